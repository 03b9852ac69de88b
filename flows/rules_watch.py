"""The fraud rules file, reloaded while the flow runs: analysts change rules without a restart.

The file's modification time is checked at most every `check_s` wall seconds (a `stat`, not
a read); when it changed, the file is parsed whole (`RuleBook.from_toml`). A file that does
not parse keeps the rules in force and logs one line naming the problem and the file,
never the file's content. Decision-threshold overrides from the settings apply on top of
every version of the file.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from flows.metrics import FRAUD_RULES, FRAUD_RULES_RELOADS
from operators.fraud.rules import RuleBook, RuleBookError

log = logging.getLogger(__name__)


class RulesWatch:
    """The `RuleBook` in force, re-read when its file changes.

    Parameters
    ----------
    path
        The TOML rules file (`OMNISTREAM_FRAUD_RULES_PATH`).
    check_s
        Wall seconds between modification-time checks.
    review, block
        Threshold overrides (`OMNISTREAM_FRAUD_REVIEW_THRESHOLD` / `..._BLOCK_THRESHOLD`), or None.
    flow
        Label of the reload metrics.
    """

    def __init__(
        self, path: Path, check_s: float = 2.0, review: float | None = None, block: float | None = None,
        flow: str = "fraud",
    ) -> None:  # fmt: skip
        self.path = path
        self.check_s = check_s
        self.review = review
        self.block = block
        self.flow = flow
        self._lock = threading.Lock()
        self._next_check = 0.0
        self._mtime_ns: int | None = None
        self._book = self._load_first()

    def _load_first(self) -> RuleBook:
        # At start a bad file is fatal: there are no previous rules to keep.
        self._mtime_ns = os.stat(self.path).st_mtime_ns
        book = self._with_overrides(RuleBook.from_toml(self.path.read_text(encoding="utf-8")))
        FRAUD_RULES.labels(self.flow, book.version).set(1)
        log.info("fraud rules version %s loaded from %s", book.version, self.path)
        self._next_check = time.monotonic() + self.check_s
        return book

    def _with_overrides(self, book: RuleBook) -> RuleBook:
        if self.review is None and self.block is None:
            return book
        review = self.review if self.review is not None else book.review
        block = self.block if self.block is not None else book.block
        if not review <= block <= book.emergency:
            raise RuleBookError(
                f"threshold overrides need review <= block <= emergency, got {review} / {block} / {book.emergency}"
            )
        return RuleBook(book.version, book.rules, review, block, book.emergency)

    def current(self) -> RuleBook:
        """The rules in force, after reloading the file if it changed since the last check."""
        now = time.monotonic()
        if now < self._next_check:
            return self._book
        with self._lock:  # workers of one process share the watch
            if now < self._next_check:
                return self._book
            self._next_check = now + self.check_s
            self._reload_if_changed()
            return self._book

    def _reload_if_changed(self) -> None:
        try:
            mtime_ns = os.stat(self.path).st_mtime_ns
        except OSError as ex:
            if self._mtime_ns is not None:
                log.warning("fraud rules file %s unreadable (%s); keeping version %s", self.path,
                            type(ex).__name__, self._book.version)  # fmt: skip
                self._mtime_ns = None
            return
        if mtime_ns == self._mtime_ns:
            return
        self._mtime_ns = mtime_ns
        try:
            book = self._with_overrides(RuleBook.from_toml(self.path.read_text(encoding="utf-8")))
        except (RuleBookError, OSError, UnicodeDecodeError) as ex:
            FRAUD_RULES_RELOADS.labels(self.flow, "refused").inc()
            problem = str(ex).splitlines()[0][:200] if isinstance(ex, RuleBookError) else type(ex).__name__
            log.warning("fraud rules file %s refused (%s); keeping version %s", self.path, problem, self._book.version)
            return
        FRAUD_RULES_RELOADS.labels(self.flow, "applied").inc()
        FRAUD_RULES.labels(self.flow, self._book.version).set(0)
        FRAUD_RULES.labels(self.flow, book.version).set(1)
        log.info("fraud rules version %s applied (was %s)", book.version, self._book.version)
        self._book = book


_WATCHES: dict[tuple[Path, float, float | None, float | None], RulesWatch] = {}
_WATCHES_LOCK = threading.Lock()


_CHECKOUT = Path(__file__).resolve().parents[1]


def resolve_rules_path(path: Path) -> Path:
    """`path` as given when it exists; a relative path that does not is looked up in the checkout (the default)."""
    if path.is_absolute() or path.exists():
        return path
    return _CHECKOUT / path


def rules_watch(path: Path, check_s: float, review: float | None, block: float | None) -> RulesWatch:
    """The process's one watch of `path` (every stateful step of the flow asks the same one)."""
    path = resolve_rules_path(path)
    key = (path.resolve(), check_s, review, block)
    with _WATCHES_LOCK:
        watch = _WATCHES.get(key)
        if watch is None:
            watch = _WATCHES[key] = RulesWatch(path, check_s, review, block)
        return watch
