-- class: cpu
-- description: weak-keyed tables (ephemerons) make the collector's atomic step quadratic, in C; refused
-- expect: status=failed type=runtime
-- limits: wall_clock_seconds=10
-- message_contains: weak-keyed tables
local ephemerons = setmetatable({}, {__mode = "k"})
local keys = {}
for i = 1, 100000 do keys[i] = {} end
for i = 1, 99999 do ephemerons[keys[i]] = keys[i + 1] end
