-- class: cross_job
-- description: break the table, math, coroutine and utf8 libraries
-- expect: status=succeeded
-- limits: wall_clock_seconds=10
table.insert, table.concat, table.unpack = nil, nil, nil
math.floor = function() return 0 end
coroutine.wrap = nil
utf8.char = nil
for k in pairs(os) do os[k] = nil end
