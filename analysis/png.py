"""PNG export of the report's figures with kaleido (which drives a Chrome/Chromium), started early in the
background so that the browser's start-up overlaps the analysis. Never makes the report fail."""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any

# kaleido's server thread can die and leave its caller waiting on a queue for ever; never wait longer than this.
TIMEOUT_S = 120.0


class PngExporter:
    """Static PNG export with kaleido, which drives a Chrome/Chromium. `start()` launches the browser in a
    background thread so that its start-up overlaps the analysis; `write()` never raises."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._started = False
        self._writer: threading.Thread | None = None
        self._result: tuple[list[Path], str | None] = ([], "PNG export did not run")

    def start(self) -> None:
        def run() -> None:
            try:
                import kaleido
                from choreographer.browsers.chromium import Chromium

                # kaleido raises "Chrome not found" inside its own server thread and then waits for ever; ask first.
                if not os.environ.get("BROWSER_PATH") and Chromium.find_browser(skip_local=False) is None:
                    raise RuntimeError("no Chrome or Chromium found (apt-get install chromium, or set BROWSER_PATH)")

                kaleido.start_sync_server(silence_warnings=True)
                self._started = True
                # The server launches Chromium and loads plotly.js on its first figure: render a tiny one now.
                kaleido.calc_fig_sync({"data": [], "layout": {}}, opts={"format": "png", "width": 10, "height": 10})
            except BaseException as exc:  # no kaleido or no browser: write() reports it
                self._error = exc
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def write(self, figs: dict[str, Any], out_dir: Path) -> tuple[list[Path], str | None]:
        """Write each figure as <name>.png; ([], reason) when that is not possible."""
        if self._thread is not None:
            self._thread.join(TIMEOUT_S)
            if self._thread.is_alive():
                return [], f"PNG figures skipped (the exporter did not start within {TIMEOUT_S:.0f} s)"
        try:
            if self._error is not None:
                raise self._error
            import plotly.io as pio

            paths = [out_dir / f"{name}.png" for name in figs]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "kopts ignored when using a server": we started that server
                pio.write_images(list(figs.values()), paths)
            return paths, None
        except Exception as exc:  # kaleido missing, no Chrome, sandbox trouble: the report stands without PNGs
            first = str(exc).splitlines()[0] if str(exc) else ""
            return [], f"PNG figures skipped ({type(exc).__name__}: {first})"

    def write_in_background(self, figs: dict[str, Any], out_dir: Path) -> None:
        """Start `write` in a thread (Chromium renders while the caller writes the other files); see `result`."""
        def run() -> None:
            self._result = self.write(figs, out_dir)
        self._writer = threading.Thread(target=run, daemon=True)
        self._writer.start()

    def result(self) -> tuple[list[Path], str | None]:
        """What the background `write` returned (waits for it)."""
        self._writer.join(TIMEOUT_S)
        if self._writer.is_alive():
            return [], f"PNG figures skipped (the exporter did not finish within {TIMEOUT_S:.0f} s)"
        return self._result

    def close(self) -> None:
        """Stop the browser, if one was started (also when the report failed before any figure)."""
        if self._thread is not None:
            self._thread.join(TIMEOUT_S)
        if self._started and not self._thread.is_alive():
            import kaleido

            kaleido.stop_sync_server(silence_warnings=True)
            self._started = False
