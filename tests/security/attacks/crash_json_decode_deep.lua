-- class: crash
-- description: json.decode of 100000 nested arrays is a catchable error
-- expect: status=succeeded
-- limits: wall_clock_seconds=10
-- result: [false, true]
local ok, err = pcall(json.decode, string.rep("[", 100000) .. string.rep("]", 100000))
return ok, err:find("deeper than", 1, true) ~= nil
