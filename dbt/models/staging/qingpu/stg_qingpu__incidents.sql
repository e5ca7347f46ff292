-- 青浦区 110 接处警: the daily GB18030 export of the police dispatch system.
-- Local times without zone in the source; the connector pinned them to Asia/Shanghai.
{{ staged_incidents('qingpu_110_incidents') }}
