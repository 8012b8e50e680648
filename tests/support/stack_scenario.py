"""The stack of template.yaml "deployed" in moto and driven through every Lambda handler, recording each function's
AWS calls.

Each function runs its real handler (functions/*/app.py) in the environment the translated template gives it, and
cold-starts as on Lambda: its settings come from that environment, its secrets from Secrets Manager (moto), through
`solver_core.secrets.FUNCTION_SECRETS`. The state machine is the translated definition, executed by moto
(tests/support/stepfunctions.py), its Task calling the RunSolver handler. What the test changes in the environment
touches no AWS API: a local sandbox instead of e2b (no e2b service here), local repositories and replay models
allowed (no network, no LLM), a private SOLVER_HOME.

Not exercised here: publishing to GitHub (its AWS calls are the RunSolver's artifact reads, made by the runs too)
and the Lambda platform's own calls (logs, X-Ray, ENIs), which the managed policies cover.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import boto3

from functions.batches import app as batches_app
from functions.cancel import app as cancel_app
from functions.migrate import app as migrate_app
from functions.run_solver import app as run_solver_app
from functions.start_solve import app as start_app
from functions.status import app as status_app
from solver_core import wiring
from solver_core.api import use_deps
from solver_core.api.deps import lambda_deps
from solver_core.secrets import FUNCTION_SECRETS
from tests.support.api import ALICE, LambdaContextStub, rest_event
from tests.support.aws_calls import CallRecorder
from tests.support.deployment import ACCOUNT, Call, Role, Stack, sam_template, translate
from tests.support.runtime import git, make_repo, wait_for_command, write_replay
from tests.support.stepfunctions import StepFunctionsHarness, substitute

API_FUNCTIONS = ("StartSolveFunction", "StatusFunction", "CancelFunction", "BatchesFunction")
BUCKET = "solver-iam-contract"
STATE_MACHINE = "solve"
BATCH_MACHINE = "solver-test-batch"  # the template names it ${AWS::StackName}-batch
TASK_FUNCTION = "run-solver"
BUGGY = "def mean(values):\n    return sum(values) // len(values)\n"
TESTS = "from calc import mean\nassert mean([1, 2]) == 1.5\n"
FIX = ("cat calc.py", "sed -i 's|//|/|' calc.py", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT")
SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
# The cancelled and the orphaned solves' long commands name a token of their own, so the test can see them running
# (a step's event is written only once its command has finished). The agent runs one step per invocation
# (SOLVER_AGENT_CHUNK_STEPS): a stopped execution stays RUNNING until its Task returns, so the orphan's step in flight
# when it is stopped is short, and its resumed execution is still in the long one when it is cancelled.
SLOW = ("cat calc.py", "sleep 30; : {slow}", SUBMIT)
ORPHAN = ("cat calc.py", "sleep 3; : {orphan}", "sleep 30; : {resumed}", SUBMIT)

# The secret each ARN parameter names, and a value of the right shape.
SECRET_PARAMETERS = {
    "DatabaseUrlSecretArn": None,  # the test database's URL
    "E2BApiKeySecretArn": "e2b_iam_contract_key",
    "LlmKeysSecretArn": json.dumps({"SOLVER_CONTRACT_LLM_KEY": "sk-iam-contract"}),
    "GitHubTokenSecretArn": "ghp_iam_contract_token",
    "WebhookSecretArn": "whsec-iam-contract",
    "GitHubAppPrivateKeySecretArn": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
}


@dataclass
class Recording:
    """What one scenario recorded: the calls of each function, and of the state machine (the Lambda invocations
    moto's interpreter made), with the stack they were made against."""

    stack: Stack
    calls: list[Call]
    unmapped: list[str]
    parameters: dict[str, str]
    definition: dict[str, Any]  # the state machine's definition as deployed (substitutions applied)
    batch_definition: dict[str, Any]  # the batch state machine's, likewise
    label: str = ""

    def roles(self, stack: Stack | None = None) -> dict[str, Role]:
        """Each function's execution role and the state machine's role, in this stack (or another translation)."""
        stack = stack or self.stack
        owners = [name for name, r in stack.resources.items() if r["Type"] == "AWS::Lambda::Function"]
        return {owner: stack.role_of(owner) for owner in [*owners, "SolveStateMachine", "BatchStateMachine"]}

    def restack(self, translated: dict[str, Any]) -> Stack:
        """Another translation, with this recording's parameters and physical names."""
        return Stack(translated, dict(self.parameters), dict(self.stack.physical))


@contextlib.contextmanager
def cloudformation_response_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A stand-in for the presigned S3 URL CloudFormation waits on for a custom resource's answer."""
    answers: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            answers.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/cfn?signature=x", answers
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """The process environment of one function: its own SOLVER_* variables and no others."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("SOLVER_")]:
        del os.environ[name]
    os.environ.update(variables)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def call(handler: Any, event: dict[str, Any], function_name: str = "solver-api") -> dict[str, Any]:
    response: dict[str, Any] = handler(event, LambdaContextStub(function_name=function_name))
    return response


class DeployedStack:
    """Drives the handlers of one translated stack; `record()` runs the whole scenario."""

    def __init__(self, parameters: Mapping[str, str], database_url: str, tmp: Path) -> None:
        self.requested = dict(parameters)
        self.database_url = database_url
        self.tmp = tmp
        self.recorder = CallRecorder()
        self.built: list[wiring.Container] = []
        self.items_read: list[str] = []

    def record(self, label: str = "") -> Recording:
        # moto logs the whole parsed program at ERROR when an execution is stopped inside a Map (as the cancel does).
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        handlers = {TASK_FUNCTION: self.recorder.wrap("RunSolverFunction", run_solver_app.handler)}
        with (
            StepFunctionsHarness(handlers, retry_time_scale=0.02, drain_timeout_s=30) as harness,
            self.recorder,
            contextlib.ExitStack() as cleanup,
        ):
            self.harness = harness
            parameters = self._create_secrets()
            boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
            physical = {
                "ArtifactsBucket": BUCKET,
                "SolveStateMachine": STATE_MACHINE,
                "BatchStateMachine": BATCH_MACHINE,
                "RunSolverFunction": TASK_FUNCTION,
            }
            self.stack = Stack(translate(sam_template(), parameters), dict(parameters), physical)
            definition = self.stack.resolve(self.stack.translated["Resources"]["SolveStateMachine"]["Properties"])
            deployed = substitute(definition["DefinitionString"], definition.get("DefinitionSubstitutions", {}))
            harness.create_state_machine(deployed, name=STATE_MACHINE)
            batch = self.stack.resolve(self.stack.translated["Resources"]["BatchStateMachine"]["Properties"])
            batch_deployed = substitute(batch["DefinitionString"], batch.get("DefinitionSubstitutions", {}))
            harness.create_state_machine(batch_deployed, name=BATCH_MACHINE)
            cleanup.callback(self._forget_cold_starts)
            self._migrate()
            for function in FUNCTION_SECRETS:
                if function != "MigrateFunction":
                    self._cold_start(function)
            self._solve_and_read()
            self._cancel_sweep_and_reconcile()  # timing-sensitive (a stop while a command runs): first
            self._batch()
            invoked = {
                ("BatchStateMachine" if event.get("step") == "finish_batch" else "SolveStateMachine",
                 harness.function_arn(name))
                for name, event in harness.invocations
            }  # fmt: skip
        calls = [*self.recorder.calls, *(Call(owner, "lambda:InvokeFunction", arn) for owner, arn in invoked)]
        # The batch's ItemReader read the items file (through moto's own client, which no function owns).
        calls += [Call("BatchStateMachine", "s3:GetObject", f"arn:aws:s3:::{BUCKET}/{key}") for key in self.items_read]
        return Recording(
            self.stack, calls, list(self.recorder.unmapped), parameters, json.loads(deployed),
            json.loads(batch_deployed), label,
        )  # fmt: skip

    # -- set-up ----------------------------------------------------------------------------------------------------

    def _create_secrets(self) -> dict[str, str]:
        """One secret per ARN parameter given, under the name the parameter's ARN names; the parameter becomes the
        secret's full ARN (with the six-character suffix), as `aws secretsmanager create-secret` prints it."""
        client = boto3.client("secretsmanager", region_name="us-east-1")
        parameters = dict(self.requested)
        for parameter, given in self.requested.items():
            if parameter not in SECRET_PARAMETERS or not given:
                continue
            value = SECRET_PARAMETERS[parameter] or self.database_url
            name = re.sub(r"-[A-Za-z0-9]{6}$", "", given.split(":secret:", 1)[1])
            parameters[parameter] = client.create_secret(Name=name, SecretString=value)["ARN"]
        return parameters

    def env_of(self, function: str) -> dict[str, str]:
        """The function's translated environment, plus the local stand-ins described in the module docstring."""
        local = {
            "SOLVER_HOME": str(self.tmp / "home"),
            "SOLVER_SANDBOX": "local",
            "SOLVER_SANDBOX_ISOLATION": "none",
            "SOLVER_SANDBOX_DIR": str(self.tmp / "sandboxes"),
            "SOLVER_ALLOW_LOCAL_REPOS": "true",
            "SOLVER_ALLOW_REPLAY_MODELS": "true",
            "SOLVER_ALLOW_UNREGISTERED_MODELS": "true",
            "SOLVER_DB_POOL_SIZE": "5",
            "SOLVER_RETRY_BACKOFF_S": "0",  # the sweeper resumes a retryable run at once
            "SOLVER_AGENT_CHUNK_STEPS": "1",  # see ORPHAN
        }
        return self.stack.environment(function) | local

    def _cold_start(self, function: str) -> None:
        """What the function's first invocation builds, in its own environment (each function's dependencies are
        cached apart, keyed by what it declares, so the later invocations reuse them as a warm Lambda would)."""
        needs = FUNCTION_SECRETS[function]
        with environment(self.env_of(function)), self.recorder.acting_as(function):
            if function in API_FUNCTIONS:
                lambda_deps(function)()
            elif function == "RunSolverFunction":
                wiring.container(needs)
            else:
                run_solver_app._sweeper(needs)
            self.built.append(wiring.container(needs))  # built above: cached

    def _forget_cold_starts(self) -> None:
        for built in self.built:
            built.close()
        wiring.container.cache_clear()
        run_solver_app._sweeper.cache_clear()
        use_deps(None)

    def _migrate(self) -> None:
        with (
            cloudformation_response_url() as (url, answers),
            environment(self.env_of("MigrateFunction")),
            self.recorder.acting_as("MigrateFunction"),
        ):
            event = {"RequestType": "Create", "ResponseURL": url, "StackId": "stack", "RequestId": "r1",
                     "LogicalResourceId": "DatabaseSchema"}  # fmt: skip
            call(migrate_app.handler, event, "migrate")
        assert [answer["Status"] for answer in answers] == ["SUCCESS"], answers

    # -- the scenario ----------------------------------------------------------------------------------------------

    def _start(self, name: str, actions: tuple[str, ...]) -> UUID:
        repo = make_repo(self.tmp / f"repo-{name}", {"calc.py": BUGGY, "test_calc.py": TESTS})
        body = {
            "repo_url": str(repo),
            "issue": {"title": "mean() floors", "body": "mean([1, 2]) is 1"},
            "models": [write_replay(self.tmp / f"{name}.yaml", *actions)],
            "test_command": "python3 test_calc.py",
            "callback_url": "https://hooks.example.com/solver",
        }
        with self.recorder.acting_as("StartSolveFunction"):
            answer = call(start_app.handler, rest_event("POST", "/solves", body=body, owner=ALICE))
        assert answer["statusCode"] == 202, answer
        return UUID(json.loads(answer["body"])["id"])

    def _execution(self, solve_id: UUID) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for arn in self._executions():
                if str(solve_id) in arn:
                    return arn
            time.sleep(0.05)
        raise AssertionError(f"no execution for solve {solve_id}")

    def _executions(self) -> list[str]:
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:{STATE_MACHINE}"
        return [e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]]

    def _status(self, path: str) -> dict[str, Any]:
        with self.recorder.acting_as("StatusFunction"):
            return call(status_app.handler, rest_event("GET", path, owner=ALICE))

    def _solve_and_read(self) -> None:
        solve_id = self._start("fix", FIX)
        outcome = self.harness.wait(self._execution(solve_id), timeout_s=120)
        assert outcome["status"] == "SUCCEEDED", outcome
        for path in ("/solves", f"/solves/{solve_id}", f"/solves/{solve_id}/events", f"/solves/{solve_id}/stats",
                     f"/solves/{solve_id}/patch", "/health", "/models", "/ui", f"/ui/solves/{solve_id}"):  # fmt: skip
            answer = self._status(path)
            assert answer["statusCode"] in (200, 302, 303), (path, answer)

    def _batch(self) -> None:
        """A cloud batch of two instances: POST /batches, its state machine (moto runs the ItemReader, the
        Distributed Map and FinishBatch; it cannot start the solve executions), then the batch's reads."""
        repo = make_repo(self.tmp / "repo-batch", {"calc.py": BUGGY, "test_calc.py": TESTS})
        base = git(repo, "rev-parse", "HEAD").strip()
        body = {
            "instances": [
                {"instance_id": f"calc-{n}", "repo": "org/calc", "repo_url": str(repo), "base_commit": base,
                 "problem_statement": "mean([1, 2]) is 1"}
                for n in range(2)
            ],
            "models": [write_replay(self.tmp / "batch.yaml", *FIX)],
            "max_concurrency": 1,
        }  # fmt: skip
        with self.recorder.acting_as("BatchesFunction"):
            answer = call(batches_app.handler, rest_event("POST", "/batches", body=body, owner=ALICE))
        assert answer["statusCode"] == 202, answer
        batch_id = json.loads(answer["body"])["id"]
        self.items_read.append(f"batches/{batch_id}/items.json")
        execution = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:{BATCH_MACHINE}:{batch_id}"
        assert self.harness.wait(execution, timeout_s=60)["status"] == "SUCCEEDED"
        # An execution that ends outside FinishBatch (aborted, failed, timed out) is settled by the reconciler.
        with self.recorder.acting_as("ReconcilerFunction"):
            settled = call(run_solver_app.reconciler, {"detail": {"executionArn": execution, "status": "ABORTED"}})
        assert settled == {"batch_status": "finished"}, settled  # it had finished: it stays finished
        for method, path in (("GET", f"/batches/{batch_id}"), ("GET", f"/batches/{batch_id}/preds"),
                             ("POST", f"/batches/{batch_id}/cancel")):  # fmt: skip
            with self.recorder.acting_as("BatchesFunction"):
                answer = call(batches_app.handler, rest_event(method, path, owner=ALICE))
            assert answer["statusCode"] == 200, (path, answer)

    def _cancel(self, solve_id: UUID) -> None:
        with self.recorder.acting_as("CancelFunction"):
            answer = call(cancel_app.handler, rest_event("POST", f"/solves/{solve_id}/cancel", owner=ALICE))
        assert answer["statusCode"] == 200, answer

    def _assert_aborted(self, execution: str) -> None:
        """The stopped execution ended ABORTED; otherwise its status and last events say what happened instead."""
        described = self.harness.wait(execution, timeout_s=60)
        last = [event["type"] for event in self.harness.history(execution)][-15:]
        assert described["status"] == "ABORTED", (described["status"], described.get("error"), last)

    def _cancel_sweep_and_reconcile(self) -> None:
        tokens = {name: f"solver-iam-{uuid.uuid4().hex[:12]}" for name in ("slow", "orphan", "resumed")}
        cancelled = self._start("slow", tuple(action.format(**tokens) for action in SLOW))
        execution = self._execution(cancelled)
        wait_for_command(tokens["slow"])
        self._cancel(cancelled)
        self._assert_aborted(execution)

        # An execution that ends outside Solver (aborted by hand, timed out): the reconciler settles its runs as
        # ExecutionEnded (retryable) and kills their sandboxes; the sweeper then resumes them in a new execution.
        orphan = self._start("orphan", tuple(action.format(**tokens) for action in ORPHAN))
        ended = self._execution(orphan)
        wait_for_command(tokens["orphan"])
        self.harness.stop(ended, error="Aborted", cause="stopped outside Solver")
        self._assert_aborted(ended)
        with self.recorder.acting_as("ReconcilerFunction"):
            detail = {"executionArn": ended, "status": "ABORTED"}
            call(run_solver_app.reconciler, {"detail": detail}, "reconciler")
        with self.recorder.acting_as("SweeperFunction"):
            report = call(run_solver_app.sweeper, {"source": "aws.scheduler"}, "sweeper")
        assert report["requeued"], report
        resumed = [arn for arn in self._executions() if str(orphan) in arn and arn != ended]
        assert resumed, "the sweeper started no resume execution"
        wait_for_command(tokens["resumed"])
        self._cancel(orphan)
        self._assert_aborted(resumed[0])
