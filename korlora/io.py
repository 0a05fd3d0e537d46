"""JSONL reading that never loses a line, and writers that never leave half a file.

Every non-blank input line ends up either as a row or as a reject
``{"line": N, "reason": CODE, "detail": "...", "raw": "..."}``; ``raw`` keeps the original text, with bytes
that are not UTF-8 written as ``\\xNN`` escapes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from korlora.errors import KorloraError
from korlora.schema import DEFAULT_MAX_CHARS, Reason, RowError, validate_row

BOM = b"\xef\xbb\xbf"


@dataclass
class ReadResult:
    rows: list[dict] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)
    lines: int = 0  # non-blank input lines

    def __post_init__(self) -> None:
        self.line_numbers: list[int] = []  # input line of each row, parallel to ``rows``


def _check_readable(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise KorloraError(f"input file not found: {path}")
    if path.is_dir():
        raise KorloraError(f"input is a directory, not a file: {path}")
    if not os.access(path, os.R_OK):
        raise KorloraError(f"input file is not readable: {path}")
    return path


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, raw_bytes)`` for each non-blank line; strips a UTF-8 BOM and CR line endings."""
    path = _check_readable(path)
    try:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if number == 1 and raw.startswith(BOM):
                    raw = raw[len(BOM) :]
                raw = raw.rstrip(b"\r\n")
                if raw.strip():
                    yield number, raw
    except OSError as e:
        raise KorloraError(f"cannot read {path}: {e.strerror or e}") from None


def escape_raw(raw: bytes) -> str:
    """The line as text; invalid UTF-8 bytes become ``\\xNN`` so nothing is lost."""
    return raw.decode("utf-8", errors="backslashreplace")


def parse_line(
    number: int, raw: bytes, max_chars: int | None = DEFAULT_MAX_CHARS,
    convert: Callable[[Any], Any] | None = None,
) -> tuple[dict | None, dict | None]:
    """Parse one JSONL line into ``(row, None)`` or ``(None, reject)``; ``convert`` turns another record
    format into a chat row first (it raises :class:`RowError` for records it cannot use)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, make_reject(number, Reason.INVALID_UTF8, f"byte {e.start}: {e.reason}", escape_raw(raw))
    try:
        row = json.loads(text)
    except json.JSONDecodeError as e:
        return None, make_reject(number, Reason.INVALID_JSON, f"{e.msg} at column {e.colno}", text)
    try:
        if convert is not None:
            row = convert(row)
        validate_row(row, max_chars=max_chars)
    except RowError as e:
        return None, make_reject(number, e.reason, e.detail, text)
    return row, None


def make_reject(line: int | None, reason: Reason | str, detail: str, raw: str | dict, **extra: Any) -> dict:
    reject: dict[str, Any] = {"line": line, "reason": str(reason), "detail": detail}
    reject.update(extra)
    reject["raw"] = raw if isinstance(raw, str) else dumps(raw)
    return reject


def valid_rows(result: ReadResult, path: str | os.PathLike, noun: str, hint: str) -> list[dict]:
    """The rows of ``result``, or a clear error when it has rejects (training never drops lines silently) or
    no rows at all; ``hint`` says what to do about the rejects."""
    if result.rejects:
        first = result.rejects[0]
        raise KorloraError(f"{path}: {len(result.rejects)} invalid {noun} (first: line {first['line']}, "
                           f"{first['reason']}: {first['detail']}); {hint}")
    if not result.rows:
        raise KorloraError(f"{path} has no {noun}")
    return result.rows


def read_jsonl(path: str | os.PathLike, max_chars: int | None = DEFAULT_MAX_CHARS) -> ReadResult:
    """Read a chat JSONL file into valid rows and rejects, in input order."""
    return collect(iter_lines(path), lambda number, raw: parse_line(number, raw, max_chars=max_chars))


def collect(records: Iterable[tuple[int, Any]], parse: Callable[[int, Any], tuple[dict | None, dict | None]]
            ) -> ReadResult:
    """Parse numbered records into valid rows (with their line numbers) and rejects, in input order."""
    result = ReadResult()
    for number, raw in records:
        result.lines += 1
        row, reject = parse(number, raw)
        if row is not None:
            result.rows.append(row)
            result.line_numbers.append(number)
        else:
            result.rejects.append(reject)
    return result


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """Open a temporary file next to ``path`` and move it into place only when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes the file private; give it the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write rows as JSON Lines atomically; returns the number written."""
    n = 0
    with atomic_path(path) as f:
        for row in rows:
            f.write(dumps(row))
            f.write("\n")
            n += 1
    return n


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")


def load_jsonl_plain(path: str | os.PathLike) -> list[dict]:
    """Read a JSONL file that korlora wrote itself (no validation)."""
    with open(_check_readable(path), encoding="utf-8-sig") as f:
        return [json.loads(line) for line in f if line.strip()]
