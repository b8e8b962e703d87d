"""The ``boternity`` command.

Exit codes: 0 success; 1 a workflow is invalid (validate) or a run failed (run); 2 bad input
(unreadable file, invalid workflow given to run/compile, bad --input); 3 an internal error (a
bug: one line on stderr, the traceback only with BOTERNITY_DEBUG=1). Everything printed goes
through cli/terminal.py, so no step id, output or message can send escape sequences to the terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boternity import __version__
from boternity.cli import client
from boternity.cli.doctor import cmd_doctor
from boternity.cli.payload import read_input
from boternity.cli.terminal import EscapingStream
from boternity.compiler import TaskTargets, compile_details, definition_json
from boternity.errors import BoternityError, ValidationFailed, readable_cause
from boternity.graph import to_mermaid
from boternity.model.workflow import json_schema
from boternity.validate import load_workflow

if TYPE_CHECKING:
    from boternity.model.loader import LoadedWorkflow


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    bad = 0
    for f in args.files:
        try:
            loaded = load_workflow(f)
        except ValidationFailed as exc:
            bad += 1
            _err(f"{f}: {len(exc.errors)} error{'s' if len(exc.errors) != 1 else ''}")
            for e in exc.errors:
                _err(f"  {e}")
            continue
        except BoternityError as exc:   # e.g. a compile limit found while checking
            bad += 1
            _err(f"{f}: {exc}")
            continue
        wf = loaded.workflow
        print(f"{f}: ok ({wf.name}, {len(wf.steps)} steps)")
    return 1 if bad else 0


def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2))
    return 0


def _load_or_exit(path: str) -> LoadedWorkflow:
    return load_workflow(path)


def cmd_compile(args: argparse.Namespace) -> int:
    loaded = _load_or_exit(args.file)
    targets = TaskTargets.local() if args.local else TaskTargets.sam()
    compiled = compile_details(loaded.workflow, targets=targets)
    text = definition_json(compiled.definition)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}: {len(compiled.definition['States'])} top-level states, "
              f"{compiled.definition_bytes:,} bytes, about {compiled.estimated_events:,} history events at most",
              file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _version() -> str:
    """The installed distribution's version (what pip shows), else the package's own."""
    try:
        return version("boternity")
    except PackageNotFoundError:
        return __version__


def cmd_graph(args: argparse.Namespace) -> int:
    sys.stdout.write(to_mermaid(_load_or_exit(args.file).workflow))
    return 0


def _sub_workflows(loaded: LoadedWorkflow, base: Path, seen: dict[str, Any]) -> None:
    """Load the workflows that sub_workflow steps name, from the same folder, and theirs in turn
    (a worklist, not recursion: a chain of a thousand sub-workflows is a long list, not a crash)."""
    pending = [loaded]
    while pending:
        current = pending.pop()
        for s in current.workflow.steps:
            if s.type != "sub_workflow":
                continue
            name = s.config.workflow_name
            if name in seen:
                continue
            child = _find_workflow(name, base)
            if child is None:
                raise BoternityError(f"{current.source.file}: step '{s.id}': sub-workflow '{name}' not found "
                                     f"(looked for a workflow named '{name}' in {base})")
            seen[name] = child.workflow
            pending.append(child)


def _find_workflow(name: str, base: Path) -> LoadedWorkflow | None:
    """``<name>.yaml`` (or .yml) in ``base``, else the first file there whose workflow is named ``name``."""
    for c in [base / f"{name}.yaml", base / f"{name}.yml", *sorted(base.glob("*.y*ml"))]:
        if not c.is_file():
            continue
        try:
            child = load_workflow(c)
        except ValidationFailed:
            if c.stem == name:
                raise
            continue
        if child.workflow.name == name:
            return child
    return None


_ICONS = {"running": "▶", "completed": "✓", "skipped": "↷", "failed": "✗", "aborted": "■", "timed_out": "⧗"}


def cmd_run(args: argparse.Namespace) -> int:
    # The local engine (moto, boto3) only for `boternity run`: seconds of imports no other command needs.
    from boternity.local.engine import LocalEngine, user_cache_dir

    loaded = _load_or_exit(args.file)
    payload = read_input(args.input)
    base = Path(args.file).resolve().parent
    children: dict[str, Any] = {}
    _sub_workflows(loaded, base, children)
    env = {}
    if args.bots:
        env["BOTERNITY_BOTS_DIR"] = str(Path(args.bots).resolve())
    elif (base / "bots").is_dir():
        env["BOTERNITY_BOTS_DIR"] = str(base / "bots")
    if args.skills:
        env["BOTERNITY_SKILLS_DIR"] = str(Path(args.skills).resolve())
    elif (base / "skills").is_dir():
        env["BOTERNITY_SKILLS_DIR"] = str(base / "skills")
    wf = loaded.workflow
    quiet = args.json
    t0 = [time.monotonic()]

    def on_step(rec: dict[str, Any]) -> None:
        if quiet:
            return
        status = rec.get("status", "?")
        it = f" [{rec['iteration']}]" if rec.get("iteration") else ""
        extra = ""
        if status == "failed" and rec.get("error"):
            extra = f": {rec['error']}"
        elif status == "skipped" and isinstance(rec.get("output"), dict):
            extra = f" ({rec['output'].get('reason')})"
        print(f"  {time.monotonic() - t0[0]:7.2f}s {_ICONS.get(status, '?')} {rec['step_id']}{it} {status}{extra}",
              file=sys.stderr)

    cache = user_cache_dir()
    with LocalEngine(base_dir=base, env=env, parse_cache_dir=cache / "asl" if cache else None,
                     lambda_api=False) as engine:
        for child in children.values():
            engine.deploy(child)
        engine.deploy(wf)
        if not quiet:
            print(f"run {wf.name} ({len(wf.steps)} steps) on the local engine", file=sys.stderr)
        t0[0] = time.monotonic()
        result = engine.run(wf, payload, timeout=args.timeout, on_step=on_step,
                            on_approval=lambda a: _decide(a, args))
    if args.json:
        print(json.dumps({"run": result.record, "steps": result.steps, "output": result.output}, indent=2,
                         default=str))
    else:
        print(f"{result.status} in {result.seconds:.2f}s (run {result.run_id})", file=sys.stderr)
        if result.status == "SUCCEEDED":
            outputs = {k: v.get("output") for k, v in (result.output or {}).items() if isinstance(v, dict)}
            print(json.dumps(outputs, indent=2, ensure_ascii=False))
        else:
            _err(f"error: {_readable_cause(result.error, result.cause)}")
    return 0 if result.status == "SUCCEEDED" else 1


def _decide(approval: dict[str, Any], args: argparse.Namespace) -> tuple[bool, str | None] | None:
    """Answer an approval step: --approve / --reject, or ask on the terminal."""
    print(f"\n  approval needed ({approval['step_id']}): {approval['prompt']}", file=sys.stderr)
    if args.approve or args.reject:
        verdict = bool(args.approve)
        print(f"  -> {'approved' if verdict else 'rejected'} (--{'approve' if verdict else 'reject'})", file=sys.stderr)
        return verdict, "decided on the command line"
    if not sys.stdin.isatty():
        print("  -> waiting: no terminal to ask (pass --approve or --reject)", file=sys.stderr)
        return None
    answer = input("  approve? [y/N] ").strip().lower()
    comment = input("  comment (optional): ").strip() or None
    return answer in ("y", "yes"), comment


def _readable_cause(error: str | None, cause: str | None) -> str:
    return readable_cause(error, cause) or "failed"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="boternity", description="Boternity Workflows: AI-bot workflows on AWS Step "
                                "Functions, runnable locally.")
    p.add_argument("--version", action="version", version=f"boternity {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="check workflow files; exit 1 if any is invalid")
    v.add_argument("files", nargs="+")
    v.set_defaults(fn=cmd_validate)
    s = sub.add_parser("schema", help="print the JSON Schema of workflow files")
    s.set_defaults(fn=cmd_schema)
    c = sub.add_parser("compile", help="print (or write) the Amazon States Language definition")
    c.add_argument("file")
    c.add_argument("-o", "--output")
    c.add_argument("--local", action="store_true", help="use the local engine's (moto) ARNs instead of placeholders for the stack's ARNs")
    c.set_defaults(fn=cmd_compile)
    g = sub.add_parser("graph", help="print a Mermaid diagram of the DAG")
    g.add_argument("file")
    g.set_defaults(fn=cmd_graph)
    r = sub.add_parser("run", help="run a workflow on this machine (no AWS account needed)")
    r.add_argument("file")
    r.add_argument("--input", help="the trigger payload: JSON text, or @file.json")
    r.add_argument("--json", action="store_true", help="print the final run record as JSON on stdout")
    r.add_argument("--bots", help="folder of bots (default: bots/ next to the workflow)")
    r.add_argument("--skills", help="folder of skills (default: skills/ next to the workflow)")
    r.add_argument("--timeout", type=float, default=None, help="stop the run after this many seconds")
    decision = r.add_mutually_exclusive_group()
    decision.add_argument("--approve", action="store_true", help="approve every approval step of this run")
    decision.add_argument("--reject", action="store_true", help="reject every approval step of this run")
    r.set_defaults(fn=cmd_run)
    _client_commands(sub)
    from boternity.cli.console import add_console_command  # here, not above: two lines for one command

    add_console_command(sub)
    return p


def _client_commands(sub: Any) -> None:
    def api_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--api", help=f"the API base URL (default $BOTERNITY_API or {client.DEFAULT_API})")
        p.add_argument("--api-key", help="send an API key instead of signing with AWS credentials")

    sv = sub.add_parser("serve", help="serve the API on 127.0.0.1 with emulated AWS (no account needed)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--dir", help="project folder with bots/ and skills/ (default: the current folder)")
    sv.set_defaults(fn=client.cmd_serve)
    d = sub.add_parser("deploy", help="register (create or update) workflows through the API")
    d.add_argument("files", nargs="+")
    api_args(d)
    d.set_defaults(fn=client.cmd_deploy)
    ud = sub.add_parser("undeploy", help="delete workflows and everything created for them (state machine, "
                        "schedules, rules, webhook paths)")
    ud.add_argument("names", nargs="*")
    ud.add_argument("--all", action="store_true", help="every registered workflow (before `sam delete`)")
    api_args(ud)
    ud.set_defaults(fn=client.cmd_undeploy)
    dr = sub.add_parser("doctor", help="smoke-test a deployed stack (or boternity serve): every step function, "
                        "the approval callback, a sub-workflow; cleans up after itself")
    dr.add_argument("--agent", metavar="BOT", help="make one real model call through this bot")
    dr.add_argument("--timeout", type=float, default=300, help="seconds to wait for the run (default 300)")
    api_args(dr)
    dr.set_defaults(fn=cmd_doctor)
    t = sub.add_parser("trigger", help="start a run through the API")
    t.add_argument("workflow")
    t.add_argument("--input", help="the payload: JSON text, or @file.json")
    t.add_argument("--idempotency-key")
    api_args(t)
    t.set_defaults(fn=client.cmd_trigger)
    rn = sub.add_parser("runs", help="list a workflow's runs")
    rn.add_argument("workflow")
    rn.add_argument("--status")
    rn.add_argument("--limit", type=int, default=20)
    api_args(rn)
    rn.set_defaults(fn=client.cmd_runs)
    lg = sub.add_parser("logs", help="show a run and its steps")
    lg.add_argument("run_id")
    lg.add_argument("--json", action="store_true")
    api_args(lg)
    lg.set_defaults(fn=client.cmd_logs)
    for name, fn, helptext in (("cancel", client.cmd_cancel, "stop a run (pending approvals are cancelled)"),
                               ("redrive", client.cmd_redrive, "resume a failed run from the failed step")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("run_id")
        api_args(p)
        p.set_defaults(fn=fn)
    for name, verdict in (("approve", True), ("reject", False)):
        p = sub.add_parser(name, help=f"{name} a pending approval")
        p.add_argument("approval_id")
        p.add_argument("--comment")
        api_args(p)
        p.set_defaults(fn=lambda a, v=verdict: client.cmd_decide(a, v))
    up = sub.add_parser("upload", help="put a file into the local emulated bucket (fires file triggers)")
    up.add_argument("file")
    up.add_argument("--key")
    up.add_argument("--api")
    up.set_defaults(fn=client.cmd_upload)
    sy = sub.add_parser("sync", help="upload bots/ and skills/ to the project bucket (BucketName output)")
    sy.add_argument("--bucket", required=True)
    sy.add_argument("--bots", default=None, help="bots folder (e.g. examples/bots)")
    sy.add_argument("--skills", default=None, help="skills folder (e.g. examples/skills)")
    sy.set_defaults(fn=client.cmd_sync)
    se = sub.add_parser("secrets", help="manage secrets of the local emulated Secrets Manager")
    se_sub = se.add_subparsers(dest="secrets_command", required=True)
    ss = se_sub.add_parser("set", help="store a secret (the value from --value or standard input)")
    ss.add_argument("name")
    ss.add_argument("--value")
    ss.add_argument("--api")
    ss.set_defaults(fn=client.cmd_secrets_set)


def main(argv: list[str] | None = None) -> int:
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = EscapingStream(out), EscapingStream(err)  # type: ignore[assignment]
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = out, err


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except ValidationFailed as exc:
        for e in exc.errors:
            _err(str(e))
        return 1 if args.command == "validate" else 2
    except BoternityError as exc:
        _err(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's edge: a bug gets one line, not a traceback
        if os.environ.get("BOTERNITY_DEBUG"):
            raise
        _err(f"error: internal error ({type(exc).__name__}: {str(exc)[:200]}); "
             "rerun with BOTERNITY_DEBUG=1 for the traceback")
        return 3


if __name__ == "__main__":
    sys.exit(main())
