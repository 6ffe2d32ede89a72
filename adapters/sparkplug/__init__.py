"""Sparkplug B: the gateway as an Edge Node for SCADA host applications."""

from adapters.sparkplug.edge_node import SparkplugAdapter

__all__ = ["SparkplugAdapter"]
