-- class: python_escape
-- description: walk everything reachable (globals, metatables, error values, results) looking for Python objects
-- expect: status=succeeded
-- limits: wall_clock_seconds=10
-- needs: replicate
-- result: [[]]
local seen, found = {}, {}
local function visit(v, path, depth)
  local t = type(v)
  if t == "userdata" then found[#found + 1] = path return end
  if depth > 12 or (t ~= "table" and t ~= "function" and t ~= "thread") or seen[v] then return end
  seen[v] = true
  local mt = getmetatable(v)
  if mt ~= nil then visit(mt, path .. "<mt>", depth + 1) end
  if t == "table" then
    for k, x in next, v do
      visit(k, path .. "<key>", depth + 1)
      visit(x, path .. "." .. tostring(k), depth + 1)
    end
  end
end
visit(_G, "_G", 0)
visit(getmetatable(""), "string_mt", 0)
visit(select(2, pcall(app.integrations.replicate.get_prediction, {prediction_id = "nope"})), "api_error", 0)
visit(select(2, pcall(function() return app.integrations.replicate.nope_function end)), "name_error", 0)
visit(select(2, pcall(app.integrations.replicate.create_prediction, {})), "permission_error", 0)
visit(app.integrations.replicate.get_account(), "result", 0)
visit(select(2, pcall(json.decode, "{")), "json_error", 0)
visit(select(2, pcall(regex.match, "x", "(")), "regex_error", 0)
visit(select(2, pcall(docs.read, {})), "docs_error", 0)
visit(coroutine.running(), "thread", 0)
return found
