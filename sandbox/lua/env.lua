--[[
The environment scripts run in: a curated copy of the standard library plus the luaq
libraries (app.integrations, print/dump, sleep, json, regex, docs, job).

Runs once per LuaRuntime on the real globals, after core.lua, library.lua and patterns.lua.
Arguments: `core` (from core.lua), `host` (Python callbacks), `config`, `library` (table
functions), `patterns` (string matching functions) and `json_lib` (the encoder). Returns the
environment table.

The same rules as in core.lua apply: values the script controls are only touched with raw
functions, and Python callbacks are kept in locals.
]]

local core, host, config, library, patterns, json_lib = ...

local type, select, error, tostring, pairs, ipairs = type, select, error, tostring, pairs, ipairs
local rawget, rawset = rawget, rawset
local real_setmetatable = setmetatable
local raw_metatable = debug.getmetatable
local format, string_sub = string.format, string.sub
local concat = table.concat
local wrap_host, request, new_error, charge = core.wrap_host, core.request, core.new_error, core.charge
local call_line, note_index, raise_at = core.call_line, core.note_index, core.raise_at
local NULL, OBJECT_MT, ARRAY_MT = core.NULL, core.OBJECT_MT, core.ARRAY_MT

local env = {}

-- Standard library ----------------------------------------------------------------------------

for _, name in ipairs({
  "assert", "error", "ipairs", "next", "pairs", "select", "tonumber", "tostring", "type",
  "rawequal", "rawget", "rawset", "rawlen",
}) do
  env[name] = _G[name]
end
env.pcall = core.pcall
env.xpcall = core.xpcall
env.getmetatable = core.getmetatable
env.setmetatable = core.setmetatable
env.load = core.load
env.unpack = library.unpack
env._G = env
env._VERSION = _VERSION

local function copy(t, except)
  local c = {}
  for k, v in pairs(t) do
    if not (except and except[k]) then
      c[k] = v
    end
  end
  return c
end

local strings = copy(string, { dump = true })
strings.rep = core.string_rep
strings.find = patterns.find
strings.match = patterns.match
strings.gmatch = patterns.gmatch
strings.gsub = patterns.gsub
env.string = strings

local tables = copy(table)
tables.move = core.table_move
tables.insert = library.insert
tables.remove = library.remove
tables.concat = library.concat
tables.unpack = library.unpack
tables.sort = library.sort
env.table = tables

env.math = copy(math)
env.utf8 = copy(utf8)
env.coroutine = copy(core.coroutine)
env.os = { time = os.time, clock = os.clock, date = os.date }

local collect = collectgarbage
function env.collectgarbage(option)
  if option == "count" then
    return collect("count")
  end
  return 0
end

local encode, encode_error = json_lib.encode, json_lib.encode_error
local real_pcall = pcall

-- The returned values as a JSON array, within the result size limit.
local function encode_results(r)
  local parts, room = {}, config.result_bytes - 2
  for i = 1, r.n do
    local ok, text = real_pcall(encode, r[i], false, false, room, "result_size")
    if not ok then
      local message = encode_error(text)
      if message ~= nil then
        error(format("return value #%d: %s", i, message), 0)
      end
      error(text, 0)
    end
    room = room - #text - 1
    parts[i] = text
  end
  return "[" .. concat(parts, ",", 1, r.n) .. "]"
end

-- Method calls on strings use the script's string table; getmetatable("") gets a stand-in.
local string_mt = raw_metatable("")
string_mt.__index = strings
string_mt.__metatable = { __index = strings }
core.set_env(env, strings, encode_results)

-- print / dump --------------------------------------------------------------------------------

-- Tables without a __tostring print as compact JSON (encoded here, within what is left of the
-- output limit); everything else through tostring, in the script's context.
local host_print = wrap_host(host.print, 2)
local output_room = wrap_host(host.output_room, 2)

local function render(v, pretty, room)
  local ok, text = real_pcall(encode, v, true, pretty, room, "output")
  if not ok then
    error(text, 0) -- limits only: display mode has no encoding errors
  end
  return text
end

function env.print(...)
  local n = select("#", ...)
  local parts = {}
  local room = nil
  for i = 1, n do
    local v = (select(i, ...))
    if type(v) == "table" then
      local mt = raw_metatable(v)
      if mt ~= nil and rawget(mt, "__tostring") ~= nil then
        v = tostring(v)
      else
        room = room or output_room()
        v = render(v, false, room)
        room = room - #v - 1
      end
    elseif type(v) ~= "string" then
      v = tostring(v)
    end
    parts[i] = v
  end
  host_print(concat(parts, "\t", 1, n))
end

function env.dump(...)
  host_print(render((...), true, output_room()))
  return ...
end

-- sleep ---------------------------------------------------------------------------------------

function env.sleep(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 then
    error("sleep expects a non-negative number of seconds", 2)
  end
  request("sleep", seconds)
end

-- json ----------------------------------------------------------------------------------------

local json_decode = wrap_host(host.json_decode, 2)

local function mark(t, mt, name)
  if t == nil then
    t = {}
  elseif type(t) ~= "table" then
    error(format("%s expects a table or nothing, got %s", name, type(t)), 3)
  end
  local old = raw_metatable(t)
  if old ~= nil and rawget(old, "__metatable") ~= nil then
    error(format("%s cannot mark a table with a protected metatable", name), 3)
  end
  return real_setmetatable(t, mt)
end

env.json = {
  null = NULL,
  encode = function(value, options)
    local pretty = false
    if options ~= nil then
      if type(options) ~= "table" then
        error("json.encode: options must be a table", 2)
      end
      pretty = rawget(options, "pretty") and true or false
    end
    -- The text is built in pieces, then joined: it must fit twice in the memory left.
    local room = (config.memory_total - collectgarbage("count") * 1024) // 2
    local ok, text = real_pcall(encode, value, false, pretty, room, "memory")
    if not ok then
      local message = encode_error(text)
      if message ~= nil then
        error("json.encode: " .. message, 2)
      end
      error(text, 0)
    end
    return text
  end,
  decode = function(text)
    if type(text) ~= "string" then
      error(format("json.decode expects a string, got %s", type(text)), 2)
    end
    local value = json_decode(text)
    return value
  end,
  object = function(t)
    return mark(t, OBJECT_MT, "json.object")
  end,
  array = function(t)
    return mark(t, ARRAY_MT, "json.array")
  end,
}

-- regex ---------------------------------------------------------------------------------------

local rx_match = wrap_host(host.regex_match, 2)
local rx_match_all = wrap_host(host.regex_match_all, 2)
local rx_gsub = wrap_host(host.regex_gsub, 2)
local rx_spans = wrap_host(host.regex_spans, 2)
local rx_split = wrap_host(host.regex_split, 2)

local function text_arg(v, fname, n)
  local t = type(v)
  if t == "string" then
    return v
  end
  if t == "number" then
    return tostring(v)
  end
  error(format("bad argument #%d to '%s' (string expected, got %s)", n, fname, t), 3)
end

local function count_arg(v, fname, n)
  if v ~= nil and type(v) ~= "number" then
    error(format("bad argument #%d to '%s' (number expected, got %s)", n, fname, type(v)), 3)
  end
  return v
end

-- RE2 runs in linear time in C: charge it by the subject's length.
local function subject_arg(v, fname)
  v = text_arg(v, fname, 1)
  charge(#v >> 4)
  return v
end

env.regex = {
  match = function(subject, pattern)
    local m = rx_match(subject_arg(subject, "regex.match"), text_arg(pattern, "regex.match", 2))
    return m
  end,
  match_all = function(subject, pattern)
    local ms = rx_match_all(
      subject_arg(subject, "regex.match_all"),
      text_arg(pattern, "regex.match_all", 2)
    )
    return ms
  end,
  gsub = function(subject, pattern, replacement, count)
    subject = subject_arg(subject, "regex.gsub")
    pattern = text_arg(pattern, "regex.gsub", 2)
    count = count_arg(count, "regex.gsub", 4)
    if type(replacement) ~= "function" then
      local out = rx_gsub(subject, pattern, text_arg(replacement, "regex.gsub", 3), count)
      return out
    end
    -- A function replacement runs here, in the script, once per match.
    local spans = rx_spans(subject, pattern, count)
    local out, pos = {}, 1
    for i = 1, spans.n do
      local span = spans[i]
      out[#out + 1] = string_sub(subject, pos, span[1] - 1)
      local rep = replacement(span[3])
      if rep == nil or rep == false then
        rep = string_sub(subject, span[1], span[2])
      elseif type(rep) == "number" then
        rep = tostring(rep)
      elseif type(rep) ~= "string" then
        error(format("invalid replacement value (a %s)", type(rep)), 2)
      end
      out[#out + 1] = rep
      pos = span[2] + 1
    end
    out[#out + 1] = string_sub(subject, pos)
    return concat(out)
  end,
  split = function(subject, pattern, maxsplit)
    local parts = rx_split(
      subject_arg(subject, "regex.split"),
      text_arg(pattern, "regex.split", 2),
      count_arg(maxsplit, "regex.split", 3)
    )
    return parts
  end,
}

-- docs ----------------------------------------------------------------------------------------

local docs_read = wrap_host(host.docs_read, 2)
local docs_list = wrap_host(host.docs_list, 2)
local docs_search = wrap_host(host.docs_search, 2)

env.docs = {
  read = function(page)
    local text = docs_read(text_arg(page, "docs.read", 1))
    return text
  end,
  list = function()
    local text = docs_list()
    return text
  end,
  search = function(query)
    local text = docs_search(text_arg(query, "docs.search", 1))
    return text
  end,
}
env.lua_read_doc = env.docs.read

-- app.integrations ----------------------------------------------------------------------------

local resolve = wrap_host(host.resolve, 2)

local function integration_function(provider, account, canonical, path)
  return function(args)
    if args == nil then
      args = {}
    elseif type(args) ~= "table" then
      local message = format("%s expects one table argument, got %s", path, type(args))
      raise_at(new_error("validation", message, "argument_error"), call_line(1))
    end
    local result = request("call", provider, account, canonical, path, args)
    return result
  end
end

local function read_only()
  error("app.integrations is read-only", 2)
end

-- A provider's namespace (account == nil) or one of its accounts. Names are resolved by the
-- host on first use, so an unknown name fails where it is written, with suggestions.
local function namespace(provider, account)
  local cache = {}
  return real_setmetatable({}, {
    __metatable = false,
    __newindex = read_only,
    __index = function(_, key)
      note_index()
      local hit = rawget(cache, key)
      if hit ~= nil then
        return hit
      end
      local kind, a, b, c = resolve(provider, account, key)
      local value
      if kind == "function" then
        value = integration_function(provider, a, b, c)
      else
        value = namespace(provider, a)
      end
      rawset(cache, key, value)
      return value
    end,
  })
end

local providers = {}
env.app = {
  integrations = real_setmetatable({}, {
    __metatable = false,
    __newindex = read_only,
    __index = function(_, key)
      local hit = rawget(providers, key)
      if hit ~= nil then
        return hit
      end
      local _, name = resolve(nil, nil, key)
      local ns = namespace(name, nil)
      rawset(providers, key, ns)
      return ns
    end,
  }),
}

-- job -----------------------------------------------------------------------------------------

env.job = { id = config.job_id, args = config.job_args }

return env
