-- 青浦区 网格事件/矛盾纠纷: one JSON line per stage change (发现→派单→核查→处置→结案→反馈).
{{ staged_grid_event_stages('qingpu_grid_events') }}
