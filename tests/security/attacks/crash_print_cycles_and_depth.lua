-- class: crash
-- description: print and dump of cyclic and very deep tables end, showing the cycle
-- expect: status=succeeded
-- limits: wall_clock_seconds=10
-- output_contains: "<cycle>"
-- output_contains: "<too deep>"
local cyclic = {}
cyclic.self = cyclic
print(cyclic)
local deep = {}
local node = deep
for i = 1, 100000 do node[1] = {} node = node[1] end
print(deep)
dump(deep)
