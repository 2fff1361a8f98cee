"""Stage 6, the result: per-frame estimates assembled into per-track arrays (``assembly``) and the result file's
contract (``contract``: writing atomically, reading with validation; numpy only, loaded by path by the add-on)."""

from backend.result.contract import FORMAT, ResultFileError, read_result, write_result

__all__ = ["FORMAT", "ResultFileError", "read_result", "write_result"]
