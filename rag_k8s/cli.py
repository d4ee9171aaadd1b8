"""The `rag-k8s` command line: thin Typer commands over the library (CONTRACT §7).

Human messages go to stderr, data (kubectl output, `--json`) to stdout. Only this module imports
Typer; heavy libraries are imported by the commands that need them, so `--help` stays fast.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from typer.core import TyperArgument, TyperOption
from rich.markup import escape
from rich.table import Table

from . import __version__, jsonsafe, wording
from .config import Settings
from .errors import STATUS_EXIT, ExitStatus, InvalidRequest, RagK8sError
from .vocab import INTENTS

# Plain help, laid out like kubectl's (no boxes, no `<str>` type tags): metavars name the values.
# Typer 0.29 would print `<str>`-style types; kubectl's help shows a value's name (`--host HOST`).
TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]


def _value_name(self: TyperOption, ctx: Any) -> str | None:
    if self.metavar is not None:
        return self.metavar
    if self.is_flag or self.count:
        return None
    return (self.name or "value").upper()


TyperOption.display_type_rich = _value_name  # type: ignore[method-assign]
app = typer.Typer(
    name="rag-k8s",
    help="A local Kubernetes command agent: curated command cards, a planner, guardrails, audit.",
    epilog=("Examples:\n\n\b\n"
            "  # Plan from plain words (a bare query plans; add --run to run it)\n"
            "  rag-k8s \"list pods in prod\"\n\n\b\n"
            "  # Run a structured request, confirming a medium-risk action\n"
            "  rag-k8s exec --intent scale --resource deployment -n staging --name api "
            "-p replicas=3 --yes"),
    pretty_exceptions_show_locals=False,  # locals can hold kube tokens
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
audit_app = typer.Typer(help="Inspect the hash-chained audit log.", no_args_is_help=True,
                        rich_markup_mode=None)
app.add_typer(audit_app, name="audit")

out = Console(soft_wrap=True, highlight=False)  # no colouring of numbers and brackets
err = Console(stderr=True, soft_wrap=True, highlight=False)

log = logging.getLogger("rag_k8s")

RISK_STYLE = {"none": "green", "low": "cyan", "medium": "yellow", "high": "bold red"}
STATUS_STYLE = {
    "planned": "cyan", "executed": "green", "failed": "red", "timeout": "red",
    "denied": "bold red", "needs_confirmation": "yellow", "invalid": "red", "no_match": "yellow",
    "interrupted": "red",
}
RAN = ("executed", "failed", "timeout", "interrupted")


@contextmanager
def _errors_to_exit() -> Iterator[None]:
    """Turn our own errors into their exit code with the message on stderr; Ctrl-C into 130."""
    try:
        yield
    except RagK8sError as e:
        err.print(f"[red]Error:[/red] {escape(str(e))}")
        raise typer.Exit(int(e.exit_status)) from None
    except KeyboardInterrupt:
        execute = sys.modules.get("rag_k8s.execute")
        if execute is not None:  # a kubectl in another thread (a runbook's steps) stops too
            execute.begin_shutdown("rag-k8s was interrupted")  # type: ignore[attr-defined]
        err.print("Interrupted.")
        raise typer.Exit(130) from None


def _settings() -> Settings:
    return Settings.resolve()


def _print_version(value: bool) -> None:
    if value:
        print(f"rag-k8s {__version__}")
        raise typer.Exit()


@app.callback()
def callback(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, show_default=False,
                                         help="More diagnostics on stderr (-vv for debug).")] = 0,
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """rag-k8s: plan and run kubectl commands from curated cards, under policy."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s", force=True)


# ---------------------------------------------------------------- request from the options


def _param_types() -> dict[str, str]:
    from .request import request_schema

    props = request_schema()["properties"]["params"]["properties"]
    return {key: spec.get("type", "string") for key, spec in props.items()}


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def parse_params(items: list[str]) -> dict[str, Any]:
    """`key=value` pairs, typed by the request schema; a value that does not convert is passed
    through as text so the request validation names the field."""
    types = _param_types()
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidRequest("params", f"--param {item!r} is not key=value")
        kind = types.get(key)
        typed: Any = value
        if kind == "integer":
            try:
                typed = int(value)
            except ValueError:
                pass
        elif kind == "boolean":
            if value.lower() in _TRUE:
                typed = True
            elif value.lower() in _FALSE:
                typed = False
        params[key] = typed
    return params


def build_payload(
    *, intent: str | None, resource: str | None, namespace: str | None, name: str | None,
    query: str | None, params: list[str], confirm: bool, dry_run: bool, timeout: int | None,
    json_input: str | None,
) -> dict[str, Any]:
    """The request dict (CONTRACT §1) from the command-line options or `--json-input FILE|-`.

    Options given next to `--json-input` override its fields.
    """
    payload: dict[str, Any] = {}
    if json_input is not None:
        text = sys.stdin.read() if json_input == "-" else _read_text(json_input)
        try:  # strict: no NaN literals, at most 32 deep (values are checked by parse_request)
            loaded = jsonsafe.parse(text, field="request")
        except InvalidRequest as e:
            raise InvalidRequest("request", f"--json-input {e.problem}") from None
        if not isinstance(loaded, dict):
            raise InvalidRequest("request", "--json-input must hold one JSON object")
        payload = loaded
    for key, value in (("intent", intent), ("resource", resource), ("namespace", namespace),
                       ("name", name), ("query", query)):
        if value is not None:
            payload[key] = value
    # A non-object `params`/`constraints` in the JSON is left as is, for validation to name it.
    if params and isinstance(payload.get("params") or {}, dict):
        payload["params"] = {**(payload.get("params") or {}), **parse_params(params)}
    if not isinstance(payload.get("constraints") or {}, dict):
        return payload
    constraints: dict[str, Any] = dict(payload.get("constraints") or {})
    if confirm:
        constraints["confirm"] = True
    if dry_run:
        constraints["dryRun"] = True
    if timeout is not None:
        constraints["timeout"] = timeout
    if constraints:
        payload["constraints"] = constraints
    return payload


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise InvalidRequest("request", f"cannot read --json-input {path}: {e.strerror}") from None


# ---------------------------------------------------------------- rendering


def render_result(result: dict[str, Any], console: Console, *, confirmed: bool = False,
                  payload: Any = None) -> None:
    """A readable summary of a result (CONTRACT §2) for people, in the CLI's own terms
    (`--yes`, not `constraints.confirm`), with hints to recover from a refusal."""
    status = result["status"]
    console.print(f"[{STATUS_STYLE.get(status, 'white')}]status[/]: {status}")
    confirmed = confirmed or status in RAN
    plan_ = result.get("plan")
    if plan_:
        risk = plan_["risk_level"]
        console.print(f"card: {escape(plan_['card_id'] or '(none)')} (planner: {plan_['planner']})")
        console.print(f"command: [bold]{escape(plan_['command'])}[/bold]")
        console.print(f"risk: [{RISK_STYLE.get(risk, 'white')}]{risk}[/]")
        if plan_.get("rationale"):
            console.print(f"rationale: {escape(plan_['rationale'])}")
        if plan_.get("preview") and console is err:
            _show_preview(plan_["preview"])
    decision = result.get("decision") or {}
    if decision:
        verdict = "allowed" if decision.get("allowed") else "refused"
        if decision.get("requires_confirmation"):
            verdict += (" (confirmed)" if confirmed else
                        f", needs confirmation ({wording.term('confirm', 'cli')})")
        console.print(f"decision: {verdict}")
        for reason in decision.get("reasons") or []:
            console.print(f"  - {escape(wording.for_door(reason, 'cli', confirmed=confirmed))}")
        if decision.get("suggestion"):
            console.print(f"suggestion: [bold]{escape(decision['suggestion'])}[/bold]")
    for hint in _hints(result, payload):
        console.print(f"hint: {escape(hint)}")
    execution = result.get("execution")
    if execution:
        extra = []
        if execution.get("dry_run"):
            extra.append("dry run")
        if execution.get("truncated"):
            extra.append("output truncated")
        if execution.get("timed_out"):
            extra.append("timed out")
        tail = f" ({', '.join(extra)})" if extra else ""
        console.print(f"kubectl exit code {execution['exit_code']} in "
                      f"{execution['duration']:.2f}s{tail}")


def _hints(result: dict[str, Any], payload: Any) -> list[str]:
    """"did you mean" for mistyped fields, and where the policy would allow a refused action."""
    if result["status"] not in ("invalid", "denied", "no_match"):
        return []
    from .errors import PolicyError
    from .policy import load_policy

    try:
        policy = load_policy(_settings().org_dir)
    except (PolicyError, RagK8sError):
        policy = None
    hints = wording.request_hints(payload, "cli",
                                  namespaces=policy.namespaces if policy is not None else ())
    allowed = wording.where_allowed(result, policy) if policy is not None else None
    if allowed:
        hints.append(allowed)
    return hints


def _emit(result: dict[str, Any], as_json: bool, *, confirmed: bool = False,
          payload: Any = None) -> None:
    if as_json:
        print(json.dumps(result))
        return
    render_result(result, err, confirmed=confirmed, payload=payload)
    execution = result.get("execution")
    if execution and "findings" in result:
        _emit_diagnosis(result)
    elif execution:
        # kubectl's own output is data: stdout to stdout, stderr to stderr.
        if execution.get("stdout"):
            sys.stdout.write(execution["stdout"])
            if not execution["stdout"].endswith("\n"):
                sys.stdout.write("\n")
        if execution.get("stderr"):
            sys.stderr.write(execution["stderr"])
            if not execution["stderr"].endswith("\n"):
                sys.stderr.write("\n")
        sys.stdout.flush()


def _emit_diagnosis(result: dict[str, Any]) -> None:
    """A runbook's report on stdout (findings, evidence, suggested commands) in place of the
    raw kubectl output, which `--json` keeps in execution.steps."""
    from .diagnose.report import render_diagnosis

    sys.stdout.write(render_diagnosis(result))
    stderr = (result.get("execution") or {}).get("stderr")
    if stderr:
        sys.stderr.write(stderr if stderr.endswith("\n") else stderr + "\n")
    sys.stdout.flush()


def _exit_for(result: dict[str, Any]) -> None:
    code = int(STATUS_EXIT.get(result["status"], ExitStatus.ERROR))
    if code:
        raise typer.Exit(code)


# ---------------------------------------------------------------- exec / plan

INTENT_HELP = "What to do: " + ", ".join(INTENTS) + "."
IntentOpt = Annotated[Optional[str], typer.Option("--intent", metavar="INTENT", help=INTENT_HELP)]
ResourceOpt = Annotated[Optional[str], typer.Option(
    "--resource", metavar="KIND",
    help="The kind, as kubectl names it: deployment (deploy), pod (po), service (svc), node, ...")]
NamespaceOpt = Annotated[Optional[str], typer.Option("--namespace", "-n", metavar="NAMESPACE",
                                                     help="The namespace.")]
NameOpt = Annotated[Optional[str], typer.Option("--name", metavar="NAME", help="The object's name.")]
QueryOpt = Annotated[Optional[str], typer.Option("--query", metavar="TEXT",
                                                 help="Free text describing the task.")]
QueryArg = Annotated[Optional[str], typer.Argument(metavar="QUERY",
                                                   help="Free text (same as --query).",
                                                   show_default=False)]
ParamOpt = Annotated[list[str], typer.Option(
    "--param", "-p", metavar="KEY=VALUE",
    help="A value for the command: replicas, image, container, tail, since, selector, ... "
         "(repeatable).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Preview: never change the cluster.")]
TimeoutOpt = Annotated[Optional[int], typer.Option(
    "--timeout", metavar="SECONDS",
    help="Seconds kubectl may run, 1-300 (default: RAG_K8S_TIMEOUT, config.yaml, 15).")]
JsonInputOpt = Annotated[Optional[str], typer.Option(
    "--json-input", metavar="FILE", help="Read the request JSON from FILE, or - for stdin.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result JSON on stdout.")]


def _query(query: str | None, positional: str | None) -> str | None:
    if query is not None and positional is not None:
        raise InvalidRequest("query", "give the query either as --query or as an argument, not both")
    return query if query is not None else positional


def _ask_yes_no(question: str) -> bool:
    """Ask on stderr, read a line from stdin; anything but y/yes (or end of input) is no.

    Not typer.confirm: Click writes a space to stdout there, which breaks `--json` output.
    Ctrl-C here stops rag-k8s (exit 130); nothing has run.
    """
    err.print(f"{question} [y/N]: ", end="", markup=False)
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        err.print()
        err.print("Interrupted at the prompt; nothing ran.")
        raise typer.Exit(int(ExitStatus.INTERRUPTED)) from None
    if not answer:
        err.print()
    return answer.strip().lower() in ("y", "yes")


def _interactive(prompt: bool | None) -> bool:
    if prompt is not None:
        return prompt
    return sys.stdin.isatty() and sys.stderr.isatty()


# `rag-k8s exec -- kubectl ...`: after `--` Click passes every word on as an argument.
ARGV_DOOR = {"allow_extra_args": True, "ignore_unknown_options": True}


def _door_argv(ctx: typer.Context, text: str | None) -> list[str] | None:
    """The argv of `exec|plan -- kubectl ...`, or None for an ordinary request."""
    extra = list(ctx.args)
    if text == "kubectl":
        return [text, *extra]
    if extra:
        raise InvalidRequest("argv", f"unexpected arguments {' '.join(extra)!r}: to send a "
                                     "command as it is, write `-- kubectl ...`")
    return None


def _with_argv(payload: dict[str, Any], argv: list[str] | None) -> dict[str, Any]:
    if argv is not None:
        payload["argv"] = argv
    return payload


def _show_preview(preview: dict[str, Any] | None) -> None:
    """A manifest change's objects and `kubectl diff`, on stderr, before the question."""
    if not preview:
        return
    err.print("objects:")
    for label in preview.get("objects") or []:
        err.print(f"  - {escape(label)}")
    if preview.get("diff"):
        err.print(f"diff ({escape(' '.join(preview['command']))}):")
        sys.stderr.write(preview["diff"] if preview["diff"].endswith("\n")
                         else preview["diff"] + "\n")
    if preview.get("digest"):
        err.print(f"preview digest: {preview['digest']}")


@app.command("exec", context_settings=ARGV_DOOR)
def exec_command(
    ctx: typer.Context,
    text: QueryArg = None,
    intent: IntentOpt = None,
    resource: ResourceOpt = None,
    namespace: NamespaceOpt = None,
    name: NameOpt = None,
    query: QueryOpt = None,
    param: ParamOpt = [],  # noqa: B006 - Typer needs a literal default
    confirm: Annotated[bool, typer.Option("--confirm", "--yes", "-y",
                                          help="Confirm a medium or high risk action.")] = False,
    dry_run: DryRunOpt = False,
    timeout: TimeoutOpt = None,
    json_input: JsonInputOpt = None,
    as_json: JsonOpt = False,
    prompt: Annotated[Optional[bool], typer.Option(
        "--prompt/--no-prompt",
        help="Ask before a risky action (default: only in an interactive terminal).")] = None,
    preview_digest: Annotated[Optional[str], typer.Option(
        "--preview-digest",
        help="Confirm a manifest change: the digest its preview (kubectl diff) showed.")] = None,
) -> None:
    """Plan, check and run one kubectl command."""
    with _errors_to_exit():
        from . import daemon as tool  # the warm server's socket first, else in-process

        argv = _door_argv(ctx, text)
        payload = _with_argv(build_payload(
            intent=intent, resource=resource, namespace=namespace, name=name,
            query=_query(query, None if argv else text), params=param, confirm=confirm,
            dry_run=dry_run, timeout=timeout, json_input=json_input), argv)
        if preview_digest is not None:
            payload.setdefault("constraints", {})["previewDigest"] = preview_digest
        result = tool.k8s_exec(payload)
        confirmed = confirm
        if result["status"] == "needs_confirmation" and _interactive(prompt):
            plan_ = result["plan"]
            err.print(f"About to run: [bold]{escape(plan_['command'])}[/bold]")
            err.print(f"risk: [{RISK_STYLE.get(plan_['risk_level'], 'white')}]"
                      f"{plan_['risk_level']}[/]")
            for reason in result["decision"]["reasons"]:
                err.print(f"  - {escape(wording.for_door(reason, 'cli'))}")
            _show_preview(plan_.get("preview"))
            if not _ask_yes_no("Run it?"):
                _emit_declined(result, as_json)
                raise typer.Exit(int(ExitStatus.NEEDS_CONFIRMATION))
            payload.setdefault("constraints", {})["confirm"] = True
            confirmed = True
            if (plan_.get("preview") or {}).get("digest"):
                # The confirmation covers the diff shown: changed files are refused.
                payload["constraints"]["previewDigest"] = plan_["preview"]["digest"]
            # Only the command that was shown may run: a re-plan that differs is refused.
            result = tool.k8s_exec(payload, expected_argv=plan_["argv"])
        if result["status"] == "interrupted" and sys.stderr.isatty():
            err.print()  # past the terminal's echoed ^C
        _emit(result, as_json, confirmed=confirmed, payload=payload)
        _exit_for(result)


def _emit_declined(result: dict[str, Any], as_json: bool) -> None:
    """The person said no: say so (the result JSON keeps its status, needs_confirmation)."""
    if as_json:
        print(json.dumps(result))
        return
    err.print(f"[yellow]status[/]: {wording.DECLINED}")
    err.print(f"command: [bold]{escape(result['plan']['command'])}[/bold] (not run)")


@app.command("plan", context_settings=ARGV_DOOR)
def plan_command(
    ctx: typer.Context,
    text: QueryArg = None,
    intent: IntentOpt = None,
    resource: ResourceOpt = None,
    namespace: NamespaceOpt = None,
    name: NameOpt = None,
    query: QueryOpt = None,
    param: ParamOpt = [],  # noqa: B006 - Typer needs a literal default
    confirm: Annotated[bool, typer.Option("--confirm", "--yes", "-y",
                                          help="Mark the request as confirmed.")] = False,
    dry_run: DryRunOpt = False,
    timeout: TimeoutOpt = None,
    json_input: JsonInputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show what would run and the policy decision; run nothing."""
    with _errors_to_exit():
        from . import daemon as tool  # the warm server's socket first, else in-process

        argv = _door_argv(ctx, text)
        payload = _with_argv(build_payload(
            intent=intent, resource=resource, namespace=namespace, name=name,
            query=_query(query, None if argv else text), params=param, confirm=confirm,
            dry_run=dry_run, timeout=timeout, json_input=json_input), argv)
        result = tool.plan(payload)
        _emit(result, as_json, confirmed=confirm, payload=payload)
        _exit_for(result)


@app.command("undo")
def undo_command(
    operation_id: Annotated[str, typer.Argument(
        help="The operation to undo (from `rag-k8s audit tail`; a unique prefix will do).")],
    confirm: Annotated[bool, typer.Option("--confirm", "--yes", "-y",
                                          help="Confirm the undo (it is medium risk).")] = False,
    dry_run: DryRunOpt = False,
    timeout: TimeoutOpt = None,
    as_json: JsonOpt = False,
    prompt: Annotated[Optional[bool], typer.Option(
        "--prompt/--no-prompt",
        help="Ask before undoing (default: only in an interactive terminal).")] = None,
    preview_digest: Annotated[Optional[str], typer.Option(
        "--preview-digest",
        help="Confirm re-creating a deleted object: the digest its preview showed.")] = None,
) -> None:
    """Undo an earlier operation: re-check the object, then run the recorded inverse."""
    with _errors_to_exit():
        from . import tool

        constraints: dict[str, Any] = {"confirm": confirm, "dryRun": dry_run}
        if timeout is not None:
            constraints["timeout"] = timeout
        if preview_digest is not None:
            constraints["previewDigest"] = preview_digest
        payload = {"intent": "undo", "params": {"operation_id": operation_id},
                   "constraints": constraints}
        result = tool.k8s_exec(payload)
        if result["status"] == "needs_confirmation" and _interactive(prompt):
            plan_ = result["plan"]
            err.print(f"About to undo with: [bold]{escape(plan_['command'])}[/bold]")
            _show_preview(plan_.get("preview"))
            if not _ask_yes_no("Run it?"):
                err.print("Not confirmed; nothing ran.")
                _emit(result, as_json)
                raise typer.Exit(int(ExitStatus.NEEDS_CONFIRMATION))
            constraints["confirm"] = True
            if (plan_.get("preview") or {}).get("digest"):
                constraints["previewDigest"] = plan_["preview"]["digest"]
            result = tool.k8s_exec(payload, expected_argv=plan_["argv"])
        _emit(result, as_json)
        _exit_for(result)


# ---------------------------------------------------------------- retrieval and index


@app.command("retrieve")
def retrieve_command(
    text: Annotated[Optional[str], typer.Argument(metavar="QUERY",
                                                  help="Free text to search the cards for.")] = None,
    query: QueryOpt = None,
    intent: IntentOpt = None,
    resource: ResourceOpt = None,
    k: Annotated[int, typer.Option("-k", min=2, max=4, metavar="N",
                                   help="How many cards (2-4).")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print the hits as JSON.")] = False,
) -> None:
    """Show the command cards nearest a query, with their scores."""
    from .daemon import retrieve  # the warm server's socket first, else in-process

    with _errors_to_exit():
        query = _query(query, text) or ""
        hits = retrieve(query, intent, resource, k, settings=_settings())
        if as_json:
            print(json.dumps([h.to_dict() for h in hits]))
            return
        table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0))  # like `kubectl get`
        table.add_column("CARD", no_wrap=True)
        table.add_column("SCORE", no_wrap=True)
        table.add_column("SNIPPET", overflow="fold")
        for h in hits:
            table.add_row(h.card_id, f"{h.score:.3f}", escape(h.snippet.splitlines()[0]
                                                               if h.snippet else ""))
        out.print(table)
        if not hits:
            err.print("No card matches; try other words or drop --intent/--resource.")
            raise typer.Exit(int(ExitStatus.NO_MATCH))


@app.command("build-index")
def build_index_command(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no summary.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Re-embed every card.")] = False,
) -> None:
    """Embed the command cards into the index (incremental).

    A fresh index is a no-op; --force re-embeds every card.
    """
    from .index import build_index

    with _errors_to_exit():
        report = build_index(_settings(), progress=not quiet, force=force)
        if not quiet:
            err.print(f"Index at {report.path}: {report.cards} cards, {report.embedded} embedded, "
                      f"{report.reused} reused, in {report.seconds:.2f}s.")


# ---------------------------------------------------------------- servers


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Address to bind (a non-loopback one needs a token).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    preload: Annotated[bool, typer.Option("--preload", help="Load the embedder and the model at start-up.")] = False,
) -> None:
    """Run the HTTP server (plan, k8s-exec, retrieve, k8sgpt).

    Routes: /plan, /k8s-exec, /retrieve, /health, and /v1/completions (the k8sgpt customrest
    backend).
    """
    from .server import serve

    with _errors_to_exit():
        serve(_settings(), host=host, port=port, preload=preload)


@app.command("daemon")
def daemon_command(
    preload: Annotated[bool, typer.Option("--preload/--no-preload", help="Load the embedder and the model at start-up.")] = True,
) -> None:
    """Keep the embedder and the model warm for the CLI, on $RAG_K8S_HOME/rag-k8s.sock only."""
    from .daemon import run_daemon

    with _errors_to_exit():
        run_daemon(_settings(), preload=preload)


@app.command("mcp")
def mcp_command(
    http: Annotated[bool, typer.Option("--http", help="Streamable HTTP on loopback instead of stdio.")] = False,
    port: Annotated[int, typer.Option(help="TCP port for --http.")] = 8001,
) -> None:
    """Run the MCP server on stdio (or HTTP with --http).

    Tools: plan, k8s_exec, retrieve.
    """
    from .mcp_server import run

    with _errors_to_exit():
        run(_settings(), http=http, port=port)


# ---------------------------------------------------------------- audit


@audit_app.command("verify")
def audit_verify(
    path: Annotated[Optional[Path], typer.Argument(help="Log file (default: the configured one).")] = None,
) -> None:
    """Check the hash chain of the audit log; exit 1 when it is broken."""
    from . import audit

    with _errors_to_exit():
        target = path or _settings().audit_log
        report = audit.verify(target)
        if report.ok:
            tail = " (a torn last line was ignored)" if report.torn_tail else ""
            err.print(f"[green]OK[/green]: {target}: {report.valid_lines} lines, chain intact{tail}.")
            return
        err.print(f"[red]BROKEN[/red]: {target}: line {report.first_bad_line}: {report.problem} "
                  f"({report.valid_lines} of {report.lines} lines valid before it).")
        raise typer.Exit(int(ExitStatus.ERROR))


@audit_app.command("tail")
def audit_tail(
    n: Annotated[int, typer.Option("-n", min=1, help="How many entries.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON entry per line.")] = False,
) -> None:
    """Show the last audit entries."""
    from . import audit

    with _errors_to_exit():
        entries = audit.tail(_settings().audit_log, n)
        if as_json:
            for entry in entries:
                print(json.dumps(entry))
            return
        out.print(audit_table(entries, out.width))


# Columns of `audit tail`, most important first: narrow terminals drop from the end of this list;
# the command (or, when nothing was planned, the reason) is never dropped and folds instead.
AUDIT_COLUMNS = ("time", "status", "namespace", "exit", "undo", "intent", "duration",
                 "operation")
COMMAND_MIN_WIDTH = 24


def _undo_mark(e: dict[str, Any]) -> str:
    from .audit import undo_mark

    return undo_mark(e)


def _audit_cells(e: dict[str, Any]) -> dict[str, str]:
    duration = e.get("duration")
    return {
        "time": str(e.get("timestamp", ""))[5:19].replace("T", " "),  # MM-DD HH:MM:SS, UTC
        "status": str(e.get("status", "")),
        "namespace": str(e.get("namespace") or ""),
        "exit": "" if e.get("exit_code") is None else str(e["exit_code"]),
        "intent": str(e.get("intent") or ""),
        "duration": f"{duration:.2f}s" if isinstance(duration, (int, float)) else "",
        "operation": str(e.get("operation_id") or "")[:8],
        "undo": _undo_mark(e),  # `rag-k8s undo` can take it back: yes / no
        # A refusal has no command to show when nothing was planned: show why instead.
        "command": str(e.get("command") or "; ".join(str(r) for r in e.get("reasons") or [])),
    }


def _undo_mark(e: dict[str, Any]) -> str:
    """`yes` when `rag-k8s undo` can take the operation back, `no` when it recorded why not."""
    from . import audit

    mark = getattr(audit, "undo_mark", None)
    return str(mark(e)) if mark is not None else ""


def fit_columns(names: tuple[str, ...], rows: list[dict[str, str]], width: int,
                gap: int = 2, last_min: int = COMMAND_MIN_WIDTH) -> list[str]:
    """The columns of `names` (in priority order) that fit `width` beside a last column of at
    least `last_min` characters: empty columns are left out, then the least important."""
    natural = {n: max([len(n), *(len(r[n]) for r in rows)]) for n in names}
    kept = [n for n in names if any(r[n] for r in rows)]  # a column with nothing in it goes first
    while kept and sum(natural[n] for n in kept) + gap * len(kept) + last_min > width:
        kept.pop()
    return kept


def audit_table(entries: list[dict[str, Any]], width: int) -> Table:
    """The `audit tail` table, laid out like `kubectl get` (no borders) within `width` columns."""

    rows = [_audit_cells(e) for e in entries]
    names = AUDIT_COLUMNS
    if any(r["undo"] for r in rows):  # only when a changing command is among the entries
        at = AUDIT_COLUMNS.index("exit") + 1
        names = (*AUDIT_COLUMNS[:at], "undo", *AUDIT_COLUMNS[at:])
    kept = fit_columns(names, rows, width)
    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0),
                  show_edge=False, title=None, collapse_padding=True)
    for name in kept:
        table.add_column(name.upper(), no_wrap=True)
    table.add_column("COMMAND", overflow="fold", min_width=min(COMMAND_MIN_WIDTH, width))
    styles = {"INFO": "green", "WARNING": "yellow", "ERROR": "red"}
    for e, cells in zip(entries, rows):
        style = styles.get(str(e.get("level")), "white")
        row = [f"[{style}]{escape(cells[n])}[/]" if n == "status" else escape(cells[n])
               for n in kept]
        table.add_row(*row, escape(cells["command"]))
    return table


@audit_app.command("path")
def audit_path() -> None:
    """Print the audit log's path."""
    with _errors_to_exit():
        print(_settings().audit_log)


# ---------------------------------------------------------------- eval, bench, doctor


@app.command("eval")
def eval_command(
    cases: Annotated[Optional[Path], typer.Option(help="JSONL cases (default: eval/cases.jsonl).")] = None,
    planner: Annotated[str, typer.Option(help="template, mlx or auto.")] = "template",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    minimum: Annotated[list[str], typer.Option(
        "--min", help="Fail (exit 1) below GROUP=FRACTION, e.g. structured=0.95 (repeatable).",
    )] = [],  # noqa: B006 - Typer needs a literal default
) -> None:
    """Score planning accuracy on the evaluation cases."""
    from . import evaluate

    with _errors_to_exit():
        thresholds = evaluate.parse_thresholds(minimum)
        settings = _settings()
        cases_path = cases or evaluate.default_cases()
        report = evaluate.run_eval(cases_path, planner=planner, settings=settings)
        if as_json:
            print(json.dumps(report.to_dict()))
        else:
            evaluate.render_report(report, out)
        below = evaluate.below_thresholds(report, thresholds)
        for line in below:
            err.print(f"[red]below the threshold[/]: {escape(line)}")
        if below:
            raise typer.Exit(int(ExitStatus.ERROR))


@app.command("bench")
def bench_command(
    output: Annotated[Path, typer.Option(help="Markdown file to write.")] = Path("BENCHMARKS.md"),
    only: Annotated[Optional[str], typer.Option(help="Run one benchmark by name.")] = None,
) -> None:
    """Run the benchmarks and write BENCHMARKS.md."""
    from . import bench

    with _errors_to_exit():
        bench.run(output, only=only, settings=_settings())
        err.print(f"Wrote {output}.")


@app.command("doctor")
def doctor_command() -> None:
    """Check this machine and the cluster, and say how to fix them.

    Checks kubectl, the kubeconfig, that the cluster answers, the index, the model, the policy
    and the audit log. Exits 1 when a check fails.
    """
    from .doctor import run_checks

    with _errors_to_exit():
        checks = run_checks(_settings())
        # One line per check, never cut (paths stay whole for copying); the fix below a failure.
        width = max(len(c.name) for c in checks)
        for c in checks:
            mark = "[green]ok[/green]  " if c.ok else "[red]FAIL[/red]"
            out.print(f"{mark}  {c.name:<{width}}  {escape(c.detail)}")
            if c.fix and not c.ok:
                out.print(f"{'':4}  {'':<{width}}  fix: {escape(c.fix)}")
            elif c.fix:
                out.print(f"{'':4}  {'':<{width}}  note: {escape(c.fix)}")
        failed = [c.name for c in checks if not c.ok]
        if failed:
            err.print(f"{len(failed)} check(s) failed: {', '.join(failed)}.")
            raise typer.Exit(int(ExitStatus.ERROR))


def _stop_like_ctrl_c(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # one path for Ctrl-C, SIGTERM and a closed terminal


RUN_FLAGS = ("--run", "-x")
_GLOBAL_FLAGS = {"-v", "-vv", "-vvv", "--verbose"}


def command_names() -> set[str]:
    """The top-level commands, read off the app's registrations (building Typer's command tree
    to learn them cost ~20 ms on every start; `app()` builds it once anyway)."""
    return {c.name for c in app.registered_commands if c.name} | {
        g.name for g in app.registered_groups if g.name}


def route_bare_query(argv: list[str], commands: set[str]) -> list[str]:
    """`rag-k8s "list pods in prod"` plans the words (`--run`/`-x` runs them: `exec`), as
    kubectl-ai takes a bare query. A single word close to a command stays an error that says
    "Did you mean"."""
    i = next((k for k, a in enumerate(argv) if a not in _GLOBAL_FLAGS), None)
    if i is None or argv[i].startswith("-") or argv[i] in commands:
        return argv
    word = argv[i]
    if " " not in word.strip() and wording.did_you_mean(word, commands, cutoff=0.75):
        return argv
    rest = argv[i:]
    command = "exec" if any(a in RUN_FLAGS for a in rest) else "plan"
    return [*argv[:i], command, *(a for a in rest if a not in RUN_FLAGS)]


def main() -> None:
    """Console-script entry point."""
    import signal

    sys.argv[1:] = route_bare_query(sys.argv[1:], command_names())

    # SIGTERM/SIGHUP take Ctrl-C's path: kubectl's tree is killed and the operation audited as
    # `interrupted` (servers install their own handlers on top of these).
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop_like_ctrl_c)
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(130)
