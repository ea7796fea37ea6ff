"""containet workbench: the engine (Linux namespaces, Open vSwitch, docker).

Never imports textual. The CLI (`workbench.cli`) and the TUI (`screens`) both
drive the same public API in `workbench.engine`.
"""

__version__ = "0.1.0"
