"""What every layer needs and that knows no system: errors, the mapping language, the TOML spec loader, the
hub's time zone (``docs/layers.md``).  Imports only the standard library and third-party packages — never
``connectors``, ``flows``, ``infra`` or ``cdchub``."""
