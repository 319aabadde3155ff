-- class: after_limit
-- description: a caught bridge error whose fields are replaced by spinning tables, raised again
-- expect: status=failed type=runtime
-- limits: wall_clock_seconds=10
-- needs: replicate
-- max_seconds: 3
local _, e = pcall(app.integrations.replicate.get_prediction, {prediction_id = "nope"})
local spin = setmetatable({}, {__tostring = function() while true do end end})
rawset(e, "message", spin)
rawset(e, "type", "limit_exceeded")
error(e)
