"""Any restoration tool as a method: a user-given command, run per LQ file or per folder of LQ files.

The harness writes each LQ JPEG to <run_dir>/lq/<dataset>/<protocol>/qf<QF>/<stem>.jpg. A command is
- per file when it names {input} (one LQ file, byte for byte) and {output} (where to write its restoration):
  it runs once for each image whose restoration is not there yet, e.g. `jpegqs -q 6 {input} {output}`;
- per folder otherwise: on the first image of a (dataset, QF) block whose restoration is not there yet it
  runs once on {input_dir} (the folder of the block's LQ files) and writes into {output_dir}.
Either way it writes into a fresh temporary folder; on success its files are moved into the block's output
folder, where each image's restoration is then read as the `outputs` method reads them (whatever its image
extension: a tool writing JPEG where PNG was expected is read all the same). Its combined stdout and stderr
are kept in a log. A command that fails (non-zero exit, timeout) is an error for its image (per file) or for
every image of its block (per folder), not a crash; a program that is not found is a configuration error.

Config:
  command        the command: a string split with shlex into an argument list (no shell) or a list of
                 arguments. Placeholders, substituted into each argument after splitting (paths with spaces
                 stay one argument; {{ }} for literal braces): {input} {output} {stem} (per file);
                 {input_dir} {output_dir} (per folder); {qf} {dataset} (both).
  shell          true runs the string through /bin/sh, with every substituted value shell-quoted.
  timeout        seconds before the command (its whole process group) is killed; null waits forever.
  template       where each restoration is, default "{output_dir}/{stem}.png"; placeholders as for
                 `outputs` ({dataset} {qf} {image} {name} {stem}) plus {output_dir}. A per-file command's
                 {output} is this file's name (relative to {output_dir}) inside its temporary folder.
  dataset_names  {run dataset name: name passed as {dataset}}.
Block folders live in the run folder: <run_dir>/work/<label>/<dataset>/<protocol>/qf<QF>/<fingerprint>/
(`output/`, and `command.log`, or `logs/<stem>.log` per file); a changed configuration gets a fresh folder.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import string
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from methods.base import MethodError, RestoreRequest, Unit
from methods.outputs import PrecomputedOutputs, TemplateOptions, check_template

FOLDER_PLACEHOLDERS = {"input_dir", "output_dir", "qf", "dataset"}
FILE_PLACEHOLDERS = {"input", "output", "stem", "qf", "dataset"}
LOG_TAIL_LINES = 3


@dataclass(frozen=True)
class CommandOptions(TemplateOptions):
    """The `command` method's configuration (see the module docstring)."""

    template: str = "{output_dir}/{stem}.png"
    command: str | list[str] = ""
    shell: bool = False
    timeout: float | None = None


class ExternalCommand(PrecomputedOutputs):
    """Runs a restoration command per LQ file or per (dataset, QF) block, then reads its outputs."""

    description = "restorations made by a user-given command, per LQ file or per folder"
    placeholders: ClassVar[set[str]] = {"output_dir", "dataset", "qf", "image", "name", "stem"}
    config_class = CommandOptions
    example: ClassVar[dict[str, Any]] = {"name": "jpegqs-q6", "command": "jpegqs -q 6 {input} {output}",
                                         "timeout": 600}

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        command = self.opts.command
        if not command or (isinstance(command, list) and not all(isinstance(a, str) for a in command)):
            raise MethodError(f"{self.name}: set `command` to a string or a list of strings")
        if self.opts.shell and not isinstance(command, str):
            raise MethodError(f"{self.name}: `shell: true` needs `command` as one string")
        parts = [command] if isinstance(command, str) else command
        for part in parts:
            check_template(part, FILE_PLACEHOLDERS | FOLDER_PLACEHOLDERS, f"{self.name}: command")
        used = {name for part in parts for _, name, _, _ in string.Formatter().parse(part) if name}
        self.per_file = bool(used & {"input", "output"})
        if self.per_file and not {"input", "output"} <= used:
            raise MethodError(f"{self.name}: a per-file command names both {{input}} and {{output}} "
                              f"(it names only {{{sorted(used & {'input', 'output'})[0]}}}): {command!r}")
        for part in parts:
            check_template(part, FILE_PLACEHOLDERS if self.per_file else FOLDER_PLACEHOLDERS,
                           f"{self.name}: {'per-file' if self.per_file else 'per-folder'} command")
        problem = self._missing_program()
        if problem:
            raise MethodError(f"{self.name}: {problem}")
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
        if not self.found_path(unit).is_file():
            if self.per_file:
                self._execute(unit, self.block_dir(unit) / "logs" / f"{unit.stem}.log", f"command for {unit.image!r}")
            else:
                self.run_block(unit)
        try:
            return super().restore(request)
        except MethodError as exc:
            raise MethodError(f"{exc}; command log: {self.log_path(unit)}") from exc

    def log_path(self, unit: Unit) -> Path:
        block = self.block_dir(unit)
        return block / "logs" / f"{unit.stem}.log" if self.per_file else block / "command.log"

    def run_block(self, unit: Unit) -> None:
        """Run the command for the unit's block once per process; a failure is re-raised for each of its units."""
        block = self.block_dir(unit)
        if block in self._failed:
            raise MethodError(self._failed[block])
        if block in self._ran:
            return
        try:
            self._execute(unit, block / "command.log", f"command for {unit.dataset} qf{unit.qf}")
        except MethodError as exc:
            self._failed[block] = str(exc)
            raise
        self._ran.add(block)

    def _execute(self, unit: Unit, log: Path, label: str) -> None:
        """Run the command for `unit` (its file or its block) into a scratch folder, then move what it wrote."""
        from bench.core.atomic import TMP_MARK, atomic_path

        block = self.block_dir(unit)
        log.parent.mkdir(parents=True, exist_ok=True)
        if not self.per_file:
            for stale in block.glob(TMP_MARK + "*"):
                if stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
        scratch = Path(tempfile.mkdtemp(prefix=TMP_MARK + "output.", dir=block)).resolve()
        argv = self._command_line(self._values(unit, scratch))
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

    def _values(self, unit: Unit, scratch: Path) -> dict[str, Any]:
        """The command's placeholder values for `unit`, writing into `scratch`."""
        values = {"qf": int(unit.qf), "dataset": self.opts.dataset_names.get(unit.dataset, unit.dataset)}
        lq = Path(unit.lq_path).resolve()
        if not self.per_file:
            return {**values, "input_dir": str(lq.parent), "output_dir": str(scratch)}
        expected, outputs = self.expected_path(unit), self.block_dir(unit) / "output"
        inside = expected.relative_to(outputs) if expected.is_relative_to(outputs) else Path(expected.name)
        (scratch / inside).parent.mkdir(parents=True, exist_ok=True)
        return {**values, "input": str(lq), "output": str(scratch / inside), "stem": unit.stem}

    def _command_line(self, values: dict[str, Any]) -> str | list[str]:
        command = self.opts.command
        if self.opts.shell:
            return command.format(**{k: shlex.quote(str(v)) for k, v in values.items()})
        parts = shlex.split(command) if isinstance(command, str) else list(command)
        return [part.format(**values) for part in parts]

    def _missing_program(self) -> str | None:
        """Why the command's program cannot run, None when it is found (a shell command is not checked)."""
        if self.opts.shell:
            return None
        command = self.opts.command
        words = shlex.split(command) if isinstance(command, str) else command
        program = words[0] if words else ""
        if shutil.which(program) or Path(program).is_file():
            return None
        return f"command program {program!r} not found (not on PATH and not a file)"

    def preflight(self, units: list[Unit]) -> list[str]:
        """The command's program must exist (restorations are made at run time, so none are looked for)."""
        problem = self._missing_program()
        return [problem] if problem else []


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
