-- 嘉善县 网格事件: the XLSX export melted to one row per stage (上报→会商→处置→反馈→长效跟踪).
-- Jiashan has no separate verification stage; 长效跟踪 arrives as follow_up.
{{ staged_grid_event_stages('jiashan_grid_events') }}
