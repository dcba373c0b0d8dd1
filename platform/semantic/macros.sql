{#- Shared logic for metric and dimension templates. Rendered in Jinja's sandbox. -#}

{#- Orders whose money counts: not canceled, not unavailable (never paid out or never shipped). -#}
{% macro counts_as_revenue(order) -%}
{{ order }}.order_status not in ('canceled', 'unavailable')
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

{#- Delivery against the estimate, in buckets that sort in order. -#}
{% macro delay_bucket(order) -%}
case
    when {{ order }}.delay_days is null then '8. not delivered'
    when {{ order }}.delay_days <= -15 then '1. 15+ days early'
    when {{ order }}.delay_days <= -8 then '2. 8-14 days early'
    when {{ order }}.delay_days <= -1 then '3. 1-7 days early'
    when {{ order }}.delay_days = 0 then '4. on the day'
    when {{ order }}.delay_days <= 3 then '5. 1-3 days late'
    when {{ order }}.delay_days <= 7 then '6. 4-7 days late'
    else '7. 8+ days late'
end
{%- endmacro %}

{#- What business users read: a source code as words, sentence case (delivered reads
Delivered, credit_card reads Credit card). For order statuses and payment types. -#}
{% macro as_words(alias, column) -%}
upper(substr(replace({{ alias }}.{{ column }}, '_', ' '), 1, 1)) || substr(replace({{ alias }}.{{ column }}, '_', ' '), 2)
{%- endmacro %}
