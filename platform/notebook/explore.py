"""Explore the Olist warehouse: pick metrics, a dimension and filters, get a chart and a table;
and a cohort explorer. Built on the Python API (olist_bi.api) only, so every figure is the
semantic layer's and the warehouse is read read-only. Served by `olist-bi notebook`."""

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Olist warehouse explorer")

with app.setup:
    import altair as alt
    import marimo as mo

    from olist_bi import api


@app.cell
def catalog():
    metric_catalog = api.metrics().set_index("name")
    dimension_catalog = api.dimensions().set_index("name")
    # Dimensions as a chart's x: every non-date dimension, dates at each grain they offer.
    dimension_choices = {}
    for _name, _row in dimension_catalog.iterrows():
        if _row["type"] == "time":
            for _grain in _row["grains"]:
                dimension_choices[f"{_row['label']} by {_grain}"] = f"{_name}:{_grain}"
        else:
            dimension_choices[_row["label"]] = _name
    states = sorted(api.query("orders", by="customer_state")["customer_state"].dropna())
    statuses = sorted(api.query("orders", by="order_status")["order_status"].dropna())
    return dimension_catalog, dimension_choices, metric_catalog, states, statuses


@app.cell
def intro():
    mo.md("""
    # Olist warehouse explorer

    Pick metrics, a dimension to break them down by, and filters: the chart and the table
    below answer from the served warehouse through the semantic layer (`olist_bi.api`), so
    every figure is the one the dashboards show. Nothing here can change the warehouse.
    """)
    return


@app.cell
def controls(dimension_choices, metric_catalog, states, statuses):
    metric_picker = mo.ui.multiselect(
        options={row["label"]: name for name, row in metric_catalog.iterrows()},
        value=["Revenue", "Orders"],
        label="Metrics",
    )
    dimension_picker = mo.ui.dropdown(options=dimension_choices, value="Purchase date by month", label="By")
    state_picker = mo.ui.multiselect(options=states, label="Customer state (none: all)")
    status_picker = mo.ui.multiselect(options=statuses, label="Order status (none: all)")
    complete_picker = mo.ui.checkbox(value=True, label="Complete months only (as the dashboards' time series)")
    mo.vstack(
        [
            mo.hstack([metric_picker, dimension_picker], justify="start"),
            mo.hstack([state_picker, status_picker], justify="start"),
            complete_picker,
        ]
    )
    return complete_picker, dimension_picker, metric_picker, state_picker, status_picker


@app.cell
def question(complete_picker, dimension_picker, metric_picker, state_picker, status_picker):
    # The question as api.query's arguments; what the chart and the table below answer.
    _where = {}
    if state_picker.value:
        _where["customer_state"] = list(state_picker.value)
    if status_picker.value:
        _where["order_status"] = list(status_picker.value)
    question = {
        "metrics": list(metric_picker.value),
        "by": [dimension_picker.value],
        "where": _where,
        "complete_periods": complete_picker.value,
    }
    return (question,)


@app.cell
def answer(question):
    mo.stop(not question["metrics"], mo.callout(mo.md("Pick at least one metric."), kind="info"))
    try:
        answer = api.query(**question)
        problem = None
    except (api.QueryError, api.LimitReached) as e:  # a metric this dimension cannot read; a query past its limits
        answer, problem = None, str(e)
    mo.stop(problem is not None, mo.callout(mo.md(f"**This question cannot be answered:** {problem}"), kind="warn"))
    return (answer,)


@app.cell
def formats():
    # How each metric format reads on an axis and in the table (as in the dashboards).
    axis_labels = {
        "currency": "'R$ ' + format(datum.value, ',.0f')",
        "percent": "format(datum.value, '.1%')",
        "count": "format(datum.value, ',d')",
    }
    cell_formats = {"currency": "R$ {:,.2f}", "percent": "{:.2%}", "count": "{:,.0f}", "decimal": "{:,.2f}"}
    return axis_labels, cell_formats


@app.cell
def chart(answer, axis_labels, dimension_catalog, metric_catalog, question):
    x = question["by"][0].split(":")[0]
    is_time = dimension_catalog.loc[x, "type"] == "time"
    shown = answer
    if not is_time and len(answer) > 25:  # a long category list: the 25 largest by the first metric
        shown = answer.nlargest(25, question["metrics"][0])
    panels = []
    for _metric in question["metrics"]:  # one panel per metric, each on its own scale and format
        _label, _format = metric_catalog.loc[_metric, "label"], metric_catalog.loc[_metric, "format"]
        _axis = alt.Axis(title=_label, labelExpr=axis_labels.get(_format, "format(datum.value, ',.2f')"))
        _tooltip = [alt.Tooltip(_metric, title=_label, format=",.4~f" if _format in ("percent", "decimal") else ",.2f")]
        if is_time:
            _x_tip = alt.Tooltip(f"{x}:T", title=dimension_catalog.loc[x, "label"])
            panels.append(
                alt.Chart(shown)
                .mark_line(point=True)
                .encode(
                    x=alt.X(f"{x}:T", title=dimension_catalog.loc[x, "label"]),
                    y=alt.Y(f"{_metric}:Q", axis=_axis),
                    tooltip=[_x_tip, *_tooltip],
                )
                .properties(width=640, height=180)
            )
        else:
            panels.append(
                alt.Chart(shown)
                .mark_bar()
                .encode(
                    y=alt.Y(f"{x}:N", sort="-x", title=dimension_catalog.loc[x, "label"]),
                    x=alt.X(f"{_metric}:Q", axis=_axis),
                    tooltip=[f"{x}:N", *_tooltip],
                )
                .properties(width=640, height=max(120, 18 * len(shown)))
            )
    figure = alt.vconcat(*panels)
    _title = ", ".join(metric_catalog.loc[m, "label"] for m in question["metrics"])
    mo.vstack(
        [
            mo.md(f"### {_title} by {dimension_catalog.loc[x, 'label'].lower()}"),
            mo.ui.altair_chart(figure, chart_selection=False, legend_selection=False),
        ]
    )
    return (figure,)


@app.cell
def table(answer, cell_formats, metric_catalog, question):
    _formats = {m: cell_formats.get(metric_catalog.loc[m, "format"], "{:,.2f}").format for m in question["metrics"]}
    _shown = answer.copy()
    for _column in _shown.columns:
        if str(_shown[_column].dtype).startswith("datetime64"):
            _shown[_column] = _shown[_column].dt.date
    mo.vstack([mo.md(f"{len(answer):,} rows"), mo.ui.table(_shown, selection=None, page_size=15, format_mapping=_formats)])
    return


@app.cell
def cohort_intro():
    mo.md("""
    ## Cohorts: who came back

    Customers grouped by the month (or quarter) of their first order; each cell is the share
    who ordered again that many months later. Month 0 is 100% by definition and left out, so
    that the colours show the real range.
    """)
    return


@app.cell
def cohort_controls(states):
    cohort_state = mo.ui.dropdown(options=["All states", *states], value="All states", label="Customers of")
    cohort_grain = mo.ui.dropdown(
        options={"month": "cohort_month:month", "quarter": "cohort_month:quarter"}, value="month", label="Cohorts by"
    )
    mo.hstack([cohort_state, cohort_grain], justify="start")
    return cohort_grain, cohort_state


@app.cell
def cohort_question(cohort_grain, cohort_state):
    cohort_question = {
        "metrics": ["cohort_return_rate"],
        "by": [cohort_grain.value, "months_since_first"],
        "where": {} if cohort_state.value == "All states" else {"customer_state": cohort_state.value},
        "complete_periods": True,
    }
    return (cohort_question,)


@app.cell
def cohorts(cohort_question):
    # Month 0 is empty by definition; months that have not happened (or not wholly) are left
    # out by complete periods, not drawn as 0%.
    cohorts = api.query(**cohort_question).dropna(subset=["cohort_return_rate"])
    return (cohorts,)


@app.cell
def cohort_chart(cohorts):
    mo.stop(cohorts.empty, mo.callout(mo.md("No cohort has a month after its first for this choice."), kind="info"))
    heatmap = (
        alt.Chart(cohorts)
        .mark_rect()
        .encode(
            x=alt.X("months_since_first:O", title="Months since first order"),
            y=alt.Y("yearmonth(cohort_month):O", title="Cohort"),
            color=alt.Color("cohort_return_rate:Q", title="Came back", scale=alt.Scale(scheme="blues"), legend=alt.Legend(format=".2%")),
            tooltip=[
                alt.Tooltip("yearmonth(cohort_month):O", title="Cohort"),
                "months_since_first:O",
                alt.Tooltip("cohort_return_rate:Q", format=".3%", title="Came back"),
            ],
        )
        .properties(width=640, height=360)
    )
    mo.ui.altair_chart(heatmap, chart_selection=False, legend_selection=False)
    return (heatmap,)


if __name__ == "__main__":
    app.run()
