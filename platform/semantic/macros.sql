{#- Shared logic for metric and dimension templates. Rendered in Jinja's sandbox. -#}

{#- Orders whose money counts: not canceled, not unavailable (never paid out or never shipped). -#}
{% macro counts_as_revenue(order) -%}
{{ order }}.order_status not in ('canceled', 'unavailable')
{%- endmacro %}

{#- A ratio that is null, not an error, when the denominator is zero. -#}
{% macro safe_divide(numerator, denominator) -%}
cast({{ numerator }} as double) / nullif({{ denominator }}, 0)
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
