"""Import and call handlers as Lambda would, in an interpreter that sees nothing but the layers.

Run as `python -B -S -I lambda_runner.py SPEC.json`: no site-packages, no script directory, no PYTHON*
variables; SPEC names the only directories to import from, the handlers to import, the calls to make.
Standard library only until those directories are on sys.path. Exit 1 names the handler that failed.
"""

import importlib
import json
import sys
import sysconfig
import time
import traceback


class Context:
    """The part of Lambda's context object that dcwatch and Powertools read."""

    def __init__(self, function_name, timeout_s):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = 256
        self.aws_request_id = "smoke-test"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "smoke"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self):
        return int(max(0.0, self._deadline - time.monotonic()) * 1000)


def load(handler):
    module, _, name = handler.rpartition(".")
    return getattr(importlib.import_module(module), name)


def main(spec_path):
    with open(spec_path, encoding="utf-8") as file:
        spec = json.load(file)
    sys.path[:0] = spec["path"]
    report = {"imported": [], "results": {}}
    for handler in spec["handlers"]:
        try:
            load(handler)
        except Exception as exc:
            print(f"{handler}: cannot import: {type(exc).__name__}: {exc}", file=sys.stderr)
            traceback.print_exc()
            return 1
        report["imported"].append(handler)
    for call in spec["invoke"]:
        try:
            result = load(call["handler"])(call["event"], Context(call["function_name"], call["timeout_s"]))
        except Exception as exc:
            print(f"{call['handler']}: failed when called: {type(exc).__name__}: {exc}", file=sys.stderr)
            traceback.print_exc()
            return 1
        report["results"][call["handler"]] = result
    # Whatever was imported came from the standard library or the given directories, and nowhere else.
    allowed = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"], *spec["path"])
    report["outside"] = sorted(
        f"{name} from {module.__file__}"
        for name, module in list(sys.modules.items())
        if getattr(module, "__file__", None) not in (None, __file__) and not module.__file__.startswith(allowed)
    )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
