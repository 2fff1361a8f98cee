"""Troupe backend: footage of several people in, posed SMPL bodies out.

Works without Blender: a command line (``python -m backend``), a JSON-lines service for the add-on, and a
library API. Torch is imported lazily by the modules that need it, so ``backend.runtime.paths`` and
``backend.result.contract`` stay cheap to import.
"""

__version__ = "0.1.0"
