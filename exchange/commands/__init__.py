"""Sub-commands of ``onewindow``, one module per area, registered in ``exchange.cli``."""
