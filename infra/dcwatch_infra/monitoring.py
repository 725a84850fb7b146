"""Alarms to the alerts topic and the dashboard: per-site health, probe latency, detection, failover.

The custom metrics are the ones `dcwatch.observability` emits (same names, same dimensions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from dcwatch import observability as obs
from dcwatch.config import Config
from dcwatch_infra import constants as c

WIDTH = 24  # the dashboard's grid


@dataclass(frozen=True)
class Vantage:
    """A place probes run from: a function of this stack, or one in another region (`region`)."""

    name: str
    function: lambda_.IFunction | None = None
    region: str | None = None


# What waits in each rule's dead-letter queue, and what to do about it.
DEAD_LETTERS = {
    "probe-rounds": "the evaluator could not judge them (its log has the error). Newer rounds are judged all the "
    "same; redrive the queue once the cause is fixed, or purge it: a round older than the next is dropped as late "
    "anyway.",
    "agent-reports": "site agents' reports EventBridge could not deliver or AgentReports failed on every retry (its "
    "log has the error; the message's attributes name it). The next report of the same agent replaces them: purge "
    "the queue once the cause is fixed.",
    "DrillSchedule": "scheduled drills EventBridge Scheduler could not start (StartExecution refused or throttled "
    "past its retries): the message names the error. That drill did not run; it runs at its next time.",
}
DEAD_LETTERS_DEFAULT = "its function's log has the error; redrive or purge the queue once the cause is fixed."


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        *,
        config: Config,
        period: Duration,
        topic: sns.ITopic,
        vantages: Sequence[Vantage],
        evaluate: lambda_.IFunction,
        dead_letters: Mapping[str, sqs.IQueue],
        steps: Sequence[lambda_.IFunction],
        state_machine: sfn.StateMachine,
        execution_ended: lambda_.IFunction,
    ):
        super().__init__(scope, "Monitoring")
        self.config, self.period, self.vantages = config, period, list(vantages)
        self.namespace = c.metrics_namespace(config.name)
        self._action = cw_actions.SnsAction(topic)
        self.alarms: dict[str, cw.Alarm] = {}

        minutes = int(period.to_minutes())
        for vantage in self.vantages:
            # The watchdog of the watchdog: silence is an outage of dcwatch itself, never "no news".
            self._alarm(
                f"no-probe-results-{vantage.name}",
                self.results_received(vantage),
                f"No probe result from {vantage.name} reached the evaluator for {c.WATCHDOG_PERIODS} x {minutes} min: "
                "the schedule, the probe function, the bus, the rule or the evaluator is broken. "
                "dcwatch cannot see the sites from there, nor fail over on their account.",
                threshold=1,
                periods=c.WATCHDOG_PERIODS,
                comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                missing=cw.TreatMissingData.BREACHING,
            )
        for vantage in self.vantages:
            if vantage.function is not None:
                self._alarm(
                    f"probe-errors-{vantage.name}",
                    vantage.function.metric_errors(period=period, statistic="Sum"),
                    f"The probe function at {vantage.name} failed in 2 periods running (its log group has the error). "
                    "Failed checks are not errors: this is the probe itself.",
                    periods=2,
                )
                self._alarm(
                    f"probe-results-lost-{vantage.name}",
                    self._metric(obs.PROBE_RESULTS_LOST, {"vantage": vantage.name}, "Sum", vantage.name),
                    f"The probe at {vantage.name} could not put results on the bus in 2 periods running (PutEvents "
                    "kept refusing them after its retries), so the evaluator decided without them. The probe's log "
                    "has 'probe results lost' with the error codes: a bus quota, its policy or EventBridge itself.",
                    periods=2,
                )
        self._alarm(
            "evaluate-errors",
            evaluate.metric_errors(period=period, statistic="Sum"),
            "The evaluator failed in 2 periods running: a failed probe round is retried from its queue (it and the "
            "rounds after it wait), then kept in the dead-letter queue; site decisions wait. Its log group has the "
            "error.",
            periods=2,
        )
        for rule, dead in dead_letters.items():
            self._alarm(
                f"dead-letters-{rule}",
                dead.metric_approximate_number_of_messages_visible(period=period, statistic="Maximum"),
                f"Messages of the {rule} rule failed every attempt and wait in its dead-letter queue: "
                + DEAD_LETTERS.get(rule, DEAD_LETTERS_DEFAULT),
            )
        one_minute = Duration.minutes(1)
        self._alarm(
            "failover-failed",
            state_machine.metric_failed(period=one_minute, statistic="Sum"),
            "A failover workflow execution failed: the ACTION NEEDED notification names the step, the cause and what "
            "was already done. Nothing was rolled back.",
        )
        self._alarm(
            "failover-timed-out",
            state_machine.metric_timed_out(period=one_minute, statistic="Sum"),
            "A failover workflow execution ran past its deadline and was stopped by Step Functions: check its "
            "execution history for the last step, and the standby's VMs and DNS records by hand. The ACTION NEEDED "
            "notification of the ExecutionEnded function says whether its lock was released.",
        )
        for step in ("Notify", "NotifyFailure"):
            self._alarm(
                f"notify-failed-{step}",
                self._metric(obs.NOTIFY_FAILED, {"step": step}, "Sum", step, period=one_minute),
                f"A recovery's {step} could not publish to the alert topic after its retries: the outcome is in the "
                "audit table (its notify-failed record holds notifyError) and, after a success, production is at the "
                "new active site. Tell the operators by hand and check the topic (its policy, its KMS key, SNS).",
            )
        self._alarm(
            "execution-ended-errors",
            execution_ended.metric_errors(period=one_minute, statistic="Sum"),
            "The ExecutionEnded function failed on a stopped or timed-out failover execution (its log group has the "
            "error): its lock may still be held until lease_s runs out, and its audit record or ACTION NEEDED "
            "notification may be missing. Check the locks table, the audit table and the execution by hand.",
        )

        self.dashboard = cw.Dashboard(
            self,
            c.DASHBOARD,
            dashboard_name=c.dashboard_name(config.name),
            default_interval=Duration.hours(3),
            widgets=self._widgets(evaluate, steps, state_machine),
        )

    def _alarm(
        self,
        what: str,
        metric: cw.IMetric,
        description: str,
        *,
        threshold: float = 1,
        periods: int = 1,
        comparison: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING,
    ) -> None:
        alarm = cw.Alarm(
            self,
            f"Alarm-{what}",
            alarm_name=c.alarm_name(self.config.name, what),
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            comparison_operator=comparison,
            treat_missing_data=missing,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms[what] = alarm

    def _metric(
        self,
        name: str,
        dimensions: dict[str, str],
        statistic: str,
        label: str,
        period: Duration | None = None,
        region: str | None = None,
    ) -> cw.Metric:
        return cw.Metric(
            namespace=self.namespace,
            metric_name=name,
            dimensions_map={"service": obs.SERVICE, **dimensions},
            statistic=statistic,
            period=period or self.period,
            label=label,
            region=region,
        )

    def results_received(self, vantage: Vantage) -> cw.Metric:
        return self._metric(obs.PROBE_RESULTS_RECEIVED, {"vantage": vantage.name}, "Sum", vantage.name)

    def _widgets(
        self, evaluate: lambda_.IFunction, steps: Sequence[lambda_.IFunction], machine: sfn.StateMachine
    ) -> list[list[cw.IWidget]]:
        config = self.config
        sites = [s.name for s in config.sites]
        rows: list[list[cw.IWidget]] = [
            [
                cw.TextWidget(
                    markdown=(
                        f"# dcwatch {config.name}\n"
                        f"Sites **{' and '.join(sites)}** ({config.active_site} active at deployment), watched from "
                        f"{', '.join(v.name for v in self.vantages)} every {int(self.period.to_minutes())} min "
                        f"(rounds every {config.probe.interval_s} s). A site is DOWN after "
                        f"{config.thresholds.failures_to_down} failures of all its critical checks. "
                        "The standby's services fail their checks while its VMs are off: that is expected."
                    ),
                    width=WIDTH // 2,
                    height=5,
                ),
                cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=WIDTH // 2, height=5),
            ]
        ]
        for site in sites:
            rows.append(
                [
                    cw.GraphWidget(
                        title=f"{site}: share of checks passing, by vantage point",
                        left=[self._site_metric(obs.CHECK_SUCCEEDED, site, v, "Average") for v in self.vantages],
                        left_y_axis=cw.YAxisProps(min=0, max=1),
                        width=WIDTH // 2,
                    ),
                    cw.GraphWidget(
                        title=f"{site}: probe latency p90 (ms), by vantage point",
                        left=[self._site_metric(obs.CHECK_LATENCY, site, v, "p90") for v in self.vantages],
                        left_y_axis=cw.YAxisProps(min=0),
                        width=WIDTH // 2,
                    ),
                ]
            )
        third = WIDTH // 3
        rows.append(
            [
                cw.GraphWidget(
                    title="Probe results received, by vantage point (the watchdog's input)",
                    left=[self.results_received(v) for v in self.vantages],
                    left_y_axis=cw.YAxisProps(min=0),
                    width=third,
                ),
                cw.GraphWidget(
                    title="Detection time (s): whole site seen failing -> DOWN decision",
                    left=[
                        self._metric(obs.DETECTION_TIME, {"site": site}, "Maximum", site, period=Duration.minutes(1))
                        for site in sites
                    ],
                    left_y_axis=cw.YAxisProps(min=0),
                    width=third,
                ),
                cw.GraphWidget(
                    title="Failover duration (ms)",
                    left=[
                        machine.metric_time(statistic="Maximum", label="slowest"),
                        machine.metric_time(statistic="Average", label="average"),
                    ],
                    left_y_axis=cw.YAxisProps(min=0),
                    width=third,
                ),
            ]
        )
        rows.append(
            [
                cw.GraphWidget(
                    title="Failover executions",
                    left=[
                        machine.metric_started(statistic="Sum", label="started"),
                        machine.metric_succeeded(statistic="Sum", label="succeeded"),
                        machine.metric_failed(statistic="Sum", label="failed"),
                        machine.metric_timed_out(statistic="Sum", label="timed out"),
                    ],
                    width=third,
                ),
                cw.GraphWidget(
                    title="Function errors",
                    left=[
                        fn.metric_errors(statistic="Sum", label=label)
                        for label, fn in [
                            *((f"probe {v.name}", v.function) for v in self.vantages if v.function),
                            ("evaluate", evaluate),
                        ]
                    ]
                    + [step.metric_errors(statistic="Sum") for step in steps],
                    width=third,
                ),
                cw.GraphWidget(
                    title="Probe round duration (ms)",
                    left=[
                        v.function.metric_duration(statistic="Maximum", label=v.name)
                        for v in self.vantages
                        if v.function
                    ],
                    width=third,
                ),
            ]
        )
        return rows

    def _site_metric(self, name: str, site: str, vantage: Vantage, statistic: str) -> cw.Metric:
        dimensions = {"site": site, "vantage": vantage.name}
        return self._metric(name, dimensions, statistic, vantage.name, region=vantage.region)
