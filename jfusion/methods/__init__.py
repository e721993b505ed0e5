"""General fusion methods, one module per family; importing a module registers its methods."""

from jfusion.methods.registry import MethodInfo, get_info, get_method, list_methods, register

# Each family module registers its methods on import (keep one line per module).
# (family modules are imported below as they land)

__all__ = ["MethodInfo", "get_info", "get_method", "list_methods", "register"]
from jfusion.methods import sparse  # noqa: F401,E402
from jfusion.methods import multiscale  # noqa: F401,E402
from jfusion.methods import spatial  # noqa: F401,E402
from jfusion.methods import cnn  # noqa: F401,E402
from jfusion.methods import superres  # noqa: F401,E402
