-- class: c_call
-- description: table.move over 2^40 indexes (no allocation, only C loop steps)
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=2000000 wall_clock_seconds=10
-- max_seconds: 2
local ok = pcall(table.move, {}, 1, 2^40, 2)
return table.move({}, 1, math.maxinteger // 2, 2)
