-- Each Mac's last recorded readiness forecast (storage.ForecastMark), so
-- that the leader's check announces only forecast changes.
CREATE TABLE IF NOT EXISTS forecast_marks (
    device_id text PRIMARY KEY,
    record    json NOT NULL
);
