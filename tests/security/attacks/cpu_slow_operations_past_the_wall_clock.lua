-- class: cpu
-- description: each loop iteration compares two 8 MB strings; the clock must still be read often
-- expect: status=limit_exceeded limit=wall_clock
-- limits: instructions=2000000000 wall_clock_seconds=1 memory_bytes=67108864
-- max_seconds: 2
local a = string.rep("a", 8 * 1024 * 1024)
local b = string.rep("a", 8 * 1024 * 1024 - 1) .. "a"
local same = 0
while true do
  if a == b and a <= b then same = same + 1 end
end
