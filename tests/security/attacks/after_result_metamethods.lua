-- class: after_limit
-- description: returned values whose metamethods spin; the host reads them raw
-- expect: status=succeeded
-- limits: wall_clock_seconds=10
-- result: [{"a": 1}, [1, 2]]
-- max_seconds: 3
local spin = function() while true do end end
local mt = {__index = spin, __newindex = spin, __len = spin, __pairs = spin, __eq = spin, __lt = spin,
  __tostring = spin, __concat = spin, __call = spin, __name = "evil"}
return setmetatable({a = 1}, mt), setmetatable({1, 2}, mt)
