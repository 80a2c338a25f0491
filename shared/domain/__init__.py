"""The pure domain core: no I/O, no clocks, no clients. Money and quantities are Decimal."""
