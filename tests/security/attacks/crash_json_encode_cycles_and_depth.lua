-- class: crash
-- description: json.encode of cyclic and 100000-deep tables are catchable errors
-- expect: status=succeeded
-- limits: wall_clock_seconds=10
-- result: [false, false, true]
local cyclic = {}
cyclic.self = {cyclic}
local deep = {}
local node = deep
for i = 1, 100000 do node.x = {} node = node.x end
local a = pcall(json.encode, cyclic)
local b, err = pcall(json.encode, deep)
return a, b, err:find("deeper than 200", 1, true) ~= nil
