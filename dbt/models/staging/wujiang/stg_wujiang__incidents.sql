-- 吴江区 incidents: JSON Lines from the partner's landing bucket, with its own category codes.
-- Wujiang sends UTC; the instants are the same, rendered in Asia/Shanghai.
{{ staged_incidents('wujiang_incidents') }}
