"""A cold start loads only what its step needs: checked by the modules a fresh interpreter holds afterwards.

Not timed (`python -m bench.imports` measures); what is held here is which heavy packages a handler's
import, or a whole run of steps against the tables as deployed (moto), leaves out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.wiring import FUNCTIONS_DIR, REPO_ROOT

pytestmark = pytest.mark.integration

HEAVY = ("pyVmomi", "aiohttp", "aws_xray_sdk", "dns", "boto3")


def run_fresh(script: str) -> dict:
    """Run `script` in a new interpreter with this tree's code and no AWS endpoint; its last line is JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DCWATCH_", "LAMBDA_"))}
    env |= {
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "layers/core/python"), str(REPO_ROOT)]),
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def loaded_by_importing(code: str) -> set[str]:
    found = run_fresh(
        f"""
        import importlib.util, json, sys
        spec = importlib.util.spec_from_file_location("handler", {str(FUNCTIONS_DIR / code / "app.py")!r})
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        print(json.dumps([h for h in {HEAVY!r} if h in sys.modules]))
        """
    )
    return set(found)


@pytest.mark.parametrize(
    ("code", "allowed"),
    [
        # The probe's handler names the bus adapter's refusal (boto3); its probers load on the first round.
        ("probe", {"boto3"}),
        ("evaluate", set()),
        ("control", set()),
        ("failover", set()),
        ("execution_ended", set()),
    ],
)
def test_importing_a_handler_loads_no_vsphere_http_dns_or_tracing_sdk(code, allowed):
    assert loaded_by_importing(code) <= allowed


@pytest.mark.parametrize("code", ["failover", "control"])
def test_importing_the_workflow_or_control_handler_loads_no_asyncio(code):
    """asyncio (about 40 ms here) loads when a step first runs a probe round, not with every step's import."""
    found = run_fresh(
        f"""
        import importlib.util, json, sys
        spec = importlib.util.spec_from_file_location("handler", {str(FUNCTIONS_DIR / code / "app.py")!r})
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        print(json.dumps("asyncio" in sys.modules))
        """
    )
    assert found is False


@pytest.mark.parametrize(
    ("module", "left_out"),
    [
        # In AWS, Route 53's TestDNSAnswer verifies the records: dnspython only for a local resolver.
        ("dcwatch.adapters.route53", {"dns"}),
        # aiohttp only for an HTTP hook: most groups have none, and Lambda hooks need boto3 only.
        ("dcwatch.adapters.hooks", {"aiohttp"}),
        # dnspython only for a DNS check: the steps that probe a mirror or a service have none.
        ("dcwatch.adapters.probers", {"dns"}),
    ],
)
def test_an_adapter_loads_a_client_library_when_a_call_first_needs_it(module, left_out):
    found = run_fresh(
        f"""
        import importlib, json, sys
        importlib.import_module({module!r})
        print(json.dumps([h for h in {sorted(left_out)!r} if h in sys.modules]))
        """
    )
    assert found == []


def test_importing_the_handlers_builds_no_validator_of_the_config_events_or_workflow_state():
    # Given a fresh interpreter, when it imports every handler as Lambda's init would
    built = run_fresh(
        f"""
        import importlib.util, json
        from pydantic import BaseModel
        for code in ("probe", "evaluate", "control", "failover", "execution_ended"):
            spec = importlib.util.spec_from_file_location(code, {str(FUNCTIONS_DIR)!r} + f"/{{code}}/app.py")
            spec.loader.exec_module(importlib.util.module_from_spec(spec))

        def models(cls):
            for sub in cls.__subclasses__():
                yield sub
                yield from models(sub)

        # `RootModel[...]` is pydantic's class made by subscripting, before any config of ours applies.
        print(json.dumps(sorted(f"{{m.__module__}}.{{m.__name__}}" for m in models(BaseModel)
                                if m.__module__.startswith("dcwatch.") and "[" not in m.__name__
                                and m.__pydantic_complete__)))
        """
    )
    # Then no model of the core has its validator yet: each is built when it first validates
    assert built == []


def test_a_model_built_on_first_use_validates_alike_in_threads_that_first_use_it_together():
    # Given a fresh interpreter whose ProbeResult has no validator yet (the prober validates results in threads)
    found = run_fresh(
        f"""
        import json, threading
        from concurrent.futures import ThreadPoolExecutor
        from dcwatch.events import ProbeResult

        sample = json.load(open({str(REPO_ROOT / "events/samples/ProbeRound.json")!r}))["detail"]["results"][0]
        built_before = ProbeResult.__pydantic_complete__
        start = threading.Barrier(8)

        def validate(_):
            start.wait(timeout=30)
            return ProbeResult.model_validate(sample).model_dump(by_alias=True, mode="json")

        # When eight threads validate their first result at once
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(validate, range(8)))
        print(json.dumps({{"built_before": built_before, "distinct": len({{json.dumps(r) for r in results}})}}))
        """
    )
    # Then each got the same, whole result (pydantic >= 2.14 builds it once, under a lock)
    assert found == {"built_before": False, "distinct": 1}


def run_deployed(code: str, when: str, then: str) -> dict:
    """Run `when` against the deployed tables (moto) with the demo config, the handler module of
    functions/<code> loaded as `handler` and a Lambda `context`; then `then`, whose last line prints JSON.
    Both see `unloaded`: the heavy packages the interpreter did not hold before the handler loaded."""
    return run_fresh(
        f"""
        import importlib.util, json, os, sys
        import boto3
        from moto import mock_aws
        from dcwatch.local.cloud import create_tables
        from dcwatch.local.lambdas import LambdaContext
        from dcwatch.wiring import TABLES

        unloaded = [h for h in {HEAVY!r} if h not in sys.modules and h != "boto3"]
        with mock_aws():
            names = create_tables(boto3.client("dynamodb"), "cold")
            os.environ |= {{spec.env: names[spec.key] for spec in TABLES}}
            os.environ["DCWATCH_CONFIG"] = {str(DEMO_CONFIG)!r}
            spec = importlib.util.spec_from_file_location("handler", {str(FUNCTIONS_DIR / code / "app.py")!r})
            handler = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(handler)
            context = LambdaContext({code!r}, "arn:aws:lambda:eu-west-1:1:function:{code}", "r-1")
{textwrap.indent(textwrap.dedent(when), " " * 12)}
{textwrap.indent(textwrap.dedent(then), " " * 8)}
        """
    )


def test_a_first_evaluation_builds_only_the_config_and_round_models_and_loads_no_vsphere_http_or_dns():
    # Given the deployed tables and the demo config, in an interpreter that holds none of those packages yet
    # (dnspython aside: the local runtime's helpers load it)
    found = run_deployed(
        "evaluate",
        # When the evaluator judges its first round
        f"""
        sample = json.load(open({str(REPO_ROOT / "events/samples/ProbeRound.json")!r}))
        record = {{"messageId": "m-1", "receiptHandle": "r", "body": json.dumps(sample),
                   "attributes": {{"MessageGroupId": "rounds", "SequenceNumber": "1"}},
                   "messageAttributes": {{}}, "md5OfBody": "", "eventSource": "aws:sqs",
                   "eventSourceARN": "arn:aws:sqs:eu-west-1:1:rounds.fifo", "awsRegion": "eu-west-1"}}
        answer = handler.handler({{"Records": [record]}}, context)
        """,
        """
        from dcwatch.config import Config
        from dcwatch.events import ProbeRound
        from dcwatch.recovery.plan import RecoveryPlan
        from dcwatch.recovery.state import WorkflowState
        built = {m.__name__: m.__pydantic_complete__ for m in (Config, ProbeRound, RecoveryPlan, WorkflowState)}
        print(json.dumps({"answer": answer, "unloaded": unloaded,
                          "loaded": [h for h in unloaded if h in sys.modules], "built": built}))
        """,
    )
    # Then it judged the round, built the validators of the config and the round, and of nothing a failover needs
    assert found["answer"] == {"batchItemFailures": []}
    assert found["built"] == {"Config": True, "ProbeRound": True, "RecoveryPlan": False, "WorkflowState": False}
    assert {"pyVmomi", "aiohttp", "aws_xray_sdk"} <= set(found["unloaded"])
    assert found["loaded"] == [], "a round's evaluation loaded what only probes, site steps or tracing need"


def test_the_lock_steps_of_a_failover_run_without_pyvmomi_aiohttp_or_the_xray_sdk():
    # Given the deployed tables and the demo config, in an interpreter that holds none of those packages yet
    found = run_deployed(
        "failover",
        # When the Steps function validates a failover, takes the lock and gives it back
        """
        request = {"action": "failover", "from": "dc-a", "to": "dc-b", "reason": "cold start"}
        state = handler.run_step({"step": "ValidateRequest", "request": request, "execution": "cold-1"}, context)
        for step in ("AcquireLease", "ReleaseLease"):
            state = handler.run_step({"step": step, "state": state}, context)
        """,
        """
        heavy = ("pyVmomi", "aiohttp", "aws_xray_sdk")
        print(json.dumps({"unloaded": unloaded, "after": [h for h in heavy if h in sys.modules],
                          "timeline": [[e["step"], e["detail"]] for e in state["timeline"]]}))
        """,
    )
    # Then it did the work, and loaded none of the packages only site steps or tracing need
    assert {"pyVmomi", "aiohttp", "aws_xray_sdk"} <= set(found["unloaded"])
    assert found["after"] == [], "a lock step loaded what only site steps or tracing need"
    assert [step for step, _ in found["timeline"]][-2:] == ["AcquireLease", "ReleaseLease"]
    assert found["timeline"][-1][1] == "lock released"


def test_the_import_bench_builds_every_app_part_a_failover_path_names_as_the_stack_configures_it():
    """`make bench-imports` once died on the report writer, an App part that exists only where the stack names
    a bucket: each step function's path is measured once here, with every part it builds."""
    from bench import imports

    _, _, path = imports.cases()
    assert set(path) == {"Steps", "SiteSteps"}
    assert "reports" in path["Steps"].parts
    for case in path.values():
        measured = imports.measure(case, runs=1)
        assert measured.import_s > 0 and measured.first_s > 0 and "boto3" in measured.heavy
