"""The CloudWatch dashboard and alarms, built from the definition in infra/dashboard.py."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra import dashboard as spec


@dataclass(frozen=True)
class ObservabilityProps:
    dashboard: spec.Dashboard
    alarm_topic_arn: str | None = None


class Observability(Construct):
    def __init__(self, scope: Construct, id: str, props: ObservabilityProps) -> None:
        super().__init__(scope, id)
        d = props.dashboard
        period = cdk.Duration.seconds(d.period_seconds)
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=d.name,
            default_interval=cdk.Duration.hours(3),
        )
        for row in d.rows:
            self.dashboard.add_widgets(*(_widget(w, period) for w in row))
        topic = (
            sns.Topic.from_topic_arn(self, "AlarmTopic", props.alarm_topic_arn)
            if props.alarm_topic_arn
            else None
        )
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        stack = cdk.Stack.of(self)
        for a in d.alarms:
            watched = _series(a.watched(), a.series, period)
            alarm = watched.create_alarm(
                self,
                a.id,
                alarm_name=f"{stack.stack_name}-{a.id}",
                alarm_description=a.description,
                threshold=a.threshold,
                evaluation_periods=a.evaluation_periods,
                datapoints_to_alarm=a.datapoints_to_alarm,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                # No traffic is not an incident: an idle function has no latency and no cold starts.
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            if topic is not None:
                alarm.add_alarm_action(actions.SnsAction(topic))
                alarm.add_ok_action(actions.SnsAction(topic))
            self.alarms[a.id] = alarm
        # Alarms by their (named) ARNs rather than references: the dashboard does not need the alarms to
        # exist first, and a deployment without alarm support (moto) still gets its dashboard.
        status = [
            cloudwatch.Alarm.from_alarm_arn(
                self,
                f"{name}Ref",
                stack.format_arn(
                    service="cloudwatch",
                    resource="alarm",
                    resource_name=f"{stack.stack_name}-{name}",
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                ),
            )
            for name in self.alarms
        ]
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=status, width=24, height=3)
        )


def _metric(m: spec.Metric, period: cdk.Duration) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=m.namespace,
        metric_name=m.name,
        dimensions_map=dict(m.dimensions),
        statistic=m.stat,
        period=period,
        label=m.label or None,
        color=m.color,
    )


def _series(
    s: spec.Series, scope: tuple[spec.Series, ...], period: cdk.Duration
) -> cloudwatch.Metric | cloudwatch.MathExpression:
    if isinstance(s, spec.Metric):
        return _metric(s, period)
    by_id = {x.id: x for x in scope}
    using: dict[str, cloudwatch.IMetric] = {
        ref: _series(by_id[ref], scope, period) for ref in dict.fromkeys(spec.references(s.expression))
    }
    return cloudwatch.MathExpression(
        expression=s.expression, using_metrics=using, label=s.label, color=s.color, period=period
    )


def _widget(w: spec.Widget, period: cdk.Duration) -> cloudwatch.IWidget:
    if isinstance(w, spec.Text):
        return cloudwatch.TextWidget(markdown=w.markdown, width=w.width, height=w.height)
    left = [_series(s, w.series, period) for s in w.visible() if not s.right]
    right = [_series(s, w.series, period) for s in w.visible() if s.right]
    return cloudwatch.GraphWidget(
        title=w.title,
        left=left,
        right=right or None,
        left_y_axis=cloudwatch.YAxisProps(label=w.left_label, min=0, show_units=False),
        right_y_axis=cloudwatch.YAxisProps(label=w.right_label, min=0, show_units=False) if right else None,
        left_annotations=[
            cloudwatch.HorizontalAnnotation(value=a.value, label=a.label, color=a.color)
            for a in w.annotations
        ]
        or None,
        width=w.width,
        height=w.height,
        period=period,
    )
