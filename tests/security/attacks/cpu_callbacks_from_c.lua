-- class: cpu
-- description: spinning inside callbacks that C calls: a sort comparator, a gsub function, __tostring
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=2000000 wall_clock_seconds=10
-- max_seconds: 5
local spin = function() while true do end end
pcall(table.sort, {3, 2, 1}, spin)
pcall(string.gsub, "abc", "%w", spin)
pcall(tostring, setmetatable({}, {__tostring = spin}))
print(setmetatable({}, {__tostring = spin}))
