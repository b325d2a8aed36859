"""Any restoration tool as a method: a user-given command run once per dataset and QF on the harness's LQ folder.

On the first image of a (dataset, QF) block whose restoration is not there yet, the command runs on the
folder of LQ files the harness wrote (<run_dir>/lq/<dataset>/<protocol>/qf<QF>/<stem>.jpg) and writes
into a fresh temporary folder; on success its files are moved into the block's output folder, where
each image's restoration is then read as the `outputs` method reads them. Its combined stdout and stderr
are kept in the block's `command.log`. A command that fails (non-zero exit, not found, timeout) is an
error for every image of that block, not a crash.

Config:
  command        the command: a string split with shlex into an argument list (no shell) or a list of
                 arguments. Placeholders {input_dir} {output_dir} {qf} {dataset} are substituted into each
                 argument after splitting, so paths with spaces stay one argument ({{ }} for literal braces).
  shell          true runs the string through /bin/sh, with every substituted value shell-quoted.
  timeout        seconds before the command (its whole process group) is killed; null waits forever.
  template       where each restoration is, default "{output_dir}/{stem}.png"; placeholders as for
                 `outputs` ({dataset} {qf} {image} {name} {stem}) plus {output_dir}.
  dataset_names  {run dataset name: name passed as {dataset}}.
Block folders live in the run folder: <run_dir>/work/<label>/<dataset>/<protocol>/qf<QF>/<fingerprint>/
(`output/`, `command.log`); a changed configuration gets a fresh folder.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from methods.base import MethodError, RestoreRequest, Unit
from methods.outputs import PrecomputedOutputs, TemplateOptions, check_template

COMMAND_PLACEHOLDERS = {"input_dir", "output_dir", "qf", "dataset"}
LOG_TAIL_LINES = 3


@dataclass(frozen=True)
class CommandOptions(TemplateOptions):
    """The `command` method's configuration (see the module docstring)."""

    template: str = "{output_dir}/{stem}.png"
    command: str | list[str] = ""
    shell: bool = False
    timeout: float | None = None


class ExternalCommand(PrecomputedOutputs):
    """Runs a restoration command per (dataset, QF) block, then reads its outputs."""

    description = "restorations made by a user-given command"
    placeholders: ClassVar[set[str]] = {"output_dir", "dataset", "qf", "image", "name", "stem"}
    config_class = CommandOptions

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        command = self.opts.command
        if not command or (isinstance(command, list) and not all(isinstance(a, str) for a in command)):
            raise MethodError(f"{self.name}: set `command` to a string or a list of strings")
        if self.opts.shell and not isinstance(command, str):
            raise MethodError(f"{self.name}: `shell: true` needs `command` as one string")
        for part in [command] if isinstance(command, str) else command:
            check_template(part, COMMAND_PLACEHOLDERS, f"{self.name}: command")
        self._failed: dict[Path, str] = {}
        self._ran: set[Path] = set()

    # -- folders -------------------------------------------------------------------------------------
    def block_dir(self, unit: Unit) -> Path:
        return Path(unit.work_dir) / self.fingerprint()

    def template_values(self, unit: Unit) -> dict[str, Any]:
        return {**super().template_values(unit), "output_dir": str(self.block_dir(unit) / "output")}

    def input_folders(self, datasets: list[str], qfs: list[int]) -> dict[Path, list[str]]:
        """None: the command writes its restorations into the run folder."""
        return {}

    # -- work ----------------------------------------------------------------------------------------
    def restore(self, request: RestoreRequest):
        unit = request.unit
        if unit is None:
            return super().restore(request)
        if not self.expected_path(unit).is_file():
            self.run_block(unit)
        try:
            return super().restore(request)
        except MethodError as exc:
            raise MethodError(f"{exc}; command log: {self.block_dir(unit) / 'command.log'}") from exc

    def run_block(self, unit: Unit) -> None:
        """Run the command for the unit's block once per process; a failure is re-raised for each of its units."""
        block = self.block_dir(unit)
        if block in self._failed:
            raise MethodError(self._failed[block])
        if block in self._ran:
            return
        try:
            self._execute(unit, block)
        except MethodError as exc:
            self._failed[block] = str(exc)
            raise
        self._ran.add(block)

    def _execute(self, unit: Unit, block: Path) -> None:
        from bench.core.atomic import TMP_MARK, atomic_path

        block.mkdir(parents=True, exist_ok=True)
        for stale in block.glob(TMP_MARK + "*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        scratch = Path(tempfile.mkdtemp(prefix=TMP_MARK + "output.", dir=block)).resolve()
        values = {"input_dir": str(Path(unit.lq_path).parent.resolve()), "output_dir": str(scratch),
                  "qf": int(unit.qf), "dataset": self.opts.dataset_names.get(unit.dataset, unit.dataset)}
        argv = self._command_line(values)
        log = block / "command.log"
        label = f"command for {unit.dataset} qf{unit.qf}"
        try:
            with atomic_path(log) as tmp_log, open(tmp_log, "w", encoding="utf-8", errors="replace") as fh:
                fh.write(f"$ {argv if isinstance(argv, str) else shlex.join(argv)}\n")
                fh.flush()
                start = time.monotonic()
                status = _spawn(argv, shell=self.opts.shell, log=fh, timeout=self.opts.timeout)
                fh.write(f"\n[{status} after {time.monotonic() - start:.1f} s]\n")
            if status != "exit status 0":
                raise MethodError(f"{label} failed ({status}); log: {log}{_tail(log)}")
            _merge(scratch, block / "output")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _command_line(self, values: dict[str, Any]) -> str | list[str]:
        command = self.opts.command
        if self.opts.shell:
            return command.format(**{k: shlex.quote(str(v)) for k, v in values.items()})
        parts = shlex.split(command) if isinstance(command, str) else list(command)
        return [part.format(**values) for part in parts]

    def preflight(self, units: list[Unit]) -> list[str]:
        """The command's program must exist (restorations are made at run time, so none are looked for)."""
        if self.opts.shell:
            return []
        command = self.opts.command
        program = (shlex.split(command) if isinstance(command, str) else command)[0]
        if shutil.which(program) or Path(program).is_file():
            return []
        return [f"command program {program!r} not found (not on PATH and not a file)"]


def _spawn(argv: str | list[str], *, shell: bool, log, timeout: float | None) -> str:
    """Run in a new process group writing to `log`; return 'exit status N', 'timed out ...' or 'not found ...'."""
    try:
        proc = subprocess.Popen(argv, shell=shell, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError as exc:
        return f"could not start: {exc}"
    try:
        return f"exit status {proc.wait(timeout=timeout)}"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return f"timed out after {timeout} s"
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise


def _merge(source: Path, target: Path) -> None:
    """Move every file the command wrote into the block's output folder (each move atomic)."""
    for path in sorted(source.rglob("*")):
        if path.is_file():
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)


def _tail(log: Path) -> str:
    """The command's last output lines (between the command line and the status line), on one line."""
    lines = [x for x in log.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]
    shown = lines[1:-1][-LOG_TAIL_LINES:]
    return f"; last output: {' | '.join(shown)}" if shown else ""
