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

{#- Delivery against the estimate: the buckets' labels, from the earliest to not delivered. The
ETL stores each order's bucket (int_order_attributes.delivery_delay, with the rule on
delay_days); delay_order gives a label its place (the dimension's `order`), so charts and
answers list the buckets in this order, not alphabetically. -#}
{% set DELAY_BUCKETS = [
    "15+ days early", "8-14 days early", "1-7 days early", "On the day",
    "1-3 days late", "4-7 days late", "8+ days late", "Not delivered",
] %}
{% macro delay_order(column) -%}
case {{ column }}
{%- for label in DELAY_BUCKETS %} when '{{ label }}' then {{ loop.index }}{% endfor %} end
{%- endmacro %}
