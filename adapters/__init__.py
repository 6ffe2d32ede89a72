"""Protocol adapters: the only code that imports a protocol library."""
