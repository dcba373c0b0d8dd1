{#- Shared logic for metric and dimension templates. Rendered in Jinja's sandbox. -#}

{#- Orders whose money counts: not canceled, not unavailable (never paid out or never shipped);
    the ETL stores it per row (int_order_attributes). -#}
{% macro counts_as_revenue(order) -%}
{{ order }}.counts_as_revenue
{%- endmacro %}

{#- A ratio that is null, not an error, when the denominator is zero. -#}
{% macro safe_divide(numerator, denominator) -%}
cast({{ numerator }} as double precision) / nullif({{ denominator }}, 0)
{%- endmacro %}

{#- Truncate a date to a grain; `grain` comes from the catalog's list, never from a user. -#}
{% macro date_grain(column, grain) -%}
{%- if grain == 'day' -%}
cast({{ column }} as date)
{%- else -%}
cast(date_trunc('{{ grain }}', {{ column }}) as date)
{%- endif -%}
{%- endmacro %}

{#- Late: delivered on a later calendar day than the estimated delivery date (fact_deliveries.is_late). -#}
{% macro is_late(order) -%}
{{ order }}.is_late
{%- endmacro %}

{#- Delivery against the estimate, in buckets: (the condition on delay_days, the label), in
order from the earliest to not delivered. delay_bucket names a row's bucket; delay_order gives
a bucket's label its place (the dimension's `order`), so charts and answers list them in this
order, not alphabetically. -#}
{% set DELAY_BUCKETS = [
    ("delay_days <= -15", "15+ days early"),
    ("delay_days <= -8", "8-14 days early"),
    ("delay_days <= -1", "1-7 days early"),
    ("delay_days = 0", "On the day"),
    ("delay_days <= 3", "1-3 days late"),
    ("delay_days <= 7", "4-7 days late"),
    ("delay_days is not null", "8+ days late"),
    ("delay_days is null", "Not delivered"),
] %}
{% macro delay_bucket(order) -%}
case
{%- for condition, label in DELAY_BUCKETS %}{{ "\n    " }}when {{ order }}.{{ condition }} then '{{ label }}'{% endfor %}{{ "\n" }}end
{%- endmacro %}

{% macro delay_order(column) -%}
case {{ column }}
{%- for condition, label in DELAY_BUCKETS %} when '{{ label }}' then {{ loop.index }}{% endfor %} end
{%- endmacro %}

{#- What business users read: a source code as words, sentence case (delivered reads
Delivered, credit_card reads Credit card). For order statuses and payment types. -#}
{% macro as_words(alias, column) -%}
upper(substr(replace({{ alias }}.{{ column }}, '_', ' '), 1, 1)) || substr(replace({{ alias }}.{{ column }}, '_', ' '), 2)
{%- endmacro %}
