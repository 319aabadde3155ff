-- class: crash
-- description: string.gsub whose replacement calls string.gsub, without end
-- expect: status=failed type=runtime
-- limits: wall_clock_seconds=10
-- max_seconds: 5
local function again(m) return (("x"):gsub(".", again)) end
return ("x"):gsub(".", again)
