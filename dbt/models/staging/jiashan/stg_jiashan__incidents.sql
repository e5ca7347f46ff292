-- 嘉善县 incidents: CSV with BOM, minute-precision local times (YYYY/MM/DD HH:MM).
{{ staged_incidents('jiashan_incidents') }}
