--[[
table.insert, table.remove, table.concat, table.unpack and table.sort that cannot loop
unseen inside C.

The C versions loop over a length they take from `#t` (which a script's __len can make
2^62, and which a plain table with keys 1, 2, 4, ..., 2^40 also gives) and index with
metamethods that may be C functions (`__index = rawlen`, `__newindex = rawequal`), so one
call can run for hours without allocating or reaching a tick. Here:

- a table without a metatable goes to C once the loop the C function will run has been
  charged to the instruction budget (its length is then the raw length, so it cannot change
  between our look and C's);
- a table with a metatable is handled in Lua: `#t` is read once and every step is a Lua loop
  iteration with a tick (this file is instrumented like a script).

Arguments: the tick function (consumed by the prologue), then `deps` (`charge`, `c_result`).
Returns the replacement functions.
]]

local _, deps = ...

local type, select, error, pcall, rawlen = type, select, error, pcall, rawlen
local raw_metatable = debug.getmetatable
local math_type, floor, log = math.type, math.floor, math.log
local format = string.format
local C_insert, C_remove, C_concat = table.insert, table.remove, table.concat
local C_unpack, C_sort = table.unpack, table.sort
local charge, c_result = deps.charge, deps.c_result

local M = {}

local function typename(v)
  if v == nil then
    return "nil"
  end
  return type(v)
end

-- Errors are raised at `level` (2: the caller of the function raising it).
local function arg_error(n, fname, message, level)
  error(format("bad argument #%d to '%s' (%s)", n, fname, message), level + 1)
end

-- An integer argument as luaL_checkinteger reads it (errors at the script's call).
local function integer_arg(v, n, fname)
  if math_type(v) == "integer" then
    return v
  end
  if type(v) == "string" then
    v = tonumber(v)
  end
  if type(v) == "number" then
    if v == floor(v) and v >= math.mininteger and v < -(math.mininteger + 0.0) then
      return floor(v)
    end
    arg_error(n, fname, "number has no integer representation", 3)
  end
  arg_error(n, fname, "number expected, got " .. typename(v), 3)
end

-- #t read once (running __len), as an integer like luaL_len.
local function length(t)
  local n = #t
  if math_type(n) == "float" and n == floor(n) then
    n = floor(n)
  end
  if math_type(n) ~= "integer" then
    error("object length is not an integer", 3)
  end
  return n
end

function M.insert(t, ...)
  local nargs = select("#", ...)
  if type(t) ~= "table" or (nargs ~= 1 and nargs ~= 2) then
    return c_result(pcall(C_insert, t, ...))
  end
  if raw_metatable(t) == nil then
    if nargs == 2 then
      local pos = ...
      if math_type(pos) == "integer" then
        charge(rawlen(t) - pos + 1)
      end
    end
    return c_result(pcall(C_insert, t, ...))
  end
  local e = length(t) + 1
  if nargs == 1 then
    t[e] = ...
    return
  end
  local pos, value = ...
  pos = integer_arg(pos, 2, "insert")
  if pos < 1 or pos > e then
    arg_error(2, "insert", "position out of bounds", 2)
  end
  for i = e, pos + 1, -1 do
    t[i] = t[i - 1]
  end
  t[pos] = value
end

function M.remove(t, ...)
  if type(t) ~= "table" then
    return c_result(pcall(C_remove, t, ...))
  end
  local nargs = select("#", ...)
  if raw_metatable(t) == nil then
    if nargs >= 1 then
      local pos = ...
      if math_type(pos) == "integer" then
        charge(rawlen(t) - pos)
      end
    end
    return c_result(pcall(C_remove, t, ...))
  end
  local size = length(t)
  local pos = size
  if nargs >= 1 and (...) ~= nil then
    pos = integer_arg((...), 2, "remove")
  end
  if pos ~= size and (pos < 1 or pos > size + 1) then
    arg_error(2, "remove", "position out of bounds", 2)
  end
  local value = t[pos]
  while pos < size do
    t[pos] = t[pos + 1]
    pos = pos + 1
  end
  t[pos] = nil
  return value
end

-- A copy of t[i..j] read through t's metamethods once per index, in a plain table.
local function plain_copy(t, i, j)
  local copy = {}
  local k = 0
  for index = i, j do
    k = k + 1
    copy[k] = t[index]
  end
  return copy, k
end

function M.concat(t, sep, i, j)
  if type(t) ~= "table" then
    return c_result(pcall(C_concat, t, sep, i, j))
  end
  local first = i == nil and 1 or integer_arg(i, 3, "concat")
  local plain = raw_metatable(t) == nil
  local last
  if j == nil then
    last = plain and rawlen(t) or length(t)
  else
    last = integer_arg(j, 4, "concat")
  end
  if plain then
    if last >= first then
      local steps = last - first + 1
      local size = rawlen(t) + 1
      charge(steps < size and steps or size) -- C stops at the first missing value
    end
    return c_result(pcall(C_concat, t, sep, first, last))
  end
  if last < first then
    return ""
  end
  local copy, n = plain_copy(t, first, last)
  for k = 1, n do
    local v = copy[k]
    if type(v) ~= "string" and type(v) ~= "number" then
      error(format("invalid value (at index %d) in table for 'concat'", first + k - 1), 2)
    end
  end
  return c_result(pcall(C_concat, copy, sep, 1, n))
end

function M.unpack(t, i, j)
  local first = i == nil and 1 or integer_arg(i, 2, "unpack")
  local last
  if j == nil then
    if type(t) == "table" and raw_metatable(t) == nil then
      last = rawlen(t)
    else
      last = #t
    end
  else
    last = integer_arg(j, 3, "unpack")
  end
  if first > last then
    return
  end
  if last - first >= 1000000 then
    error("too many results to unpack", 2)
  end
  if type(t) == "table" and raw_metatable(t) ~= nil then
    local copy, n = plain_copy(t, first, last)
    return C_unpack(copy, 1, n)
  end
  charge(last - first + 1)
  return c_result(pcall(C_unpack, t, first, last))
end

function M.sort(t, comp)
  if type(t) ~= "table" then
    return c_result(pcall(C_sort, t, comp))
  end
  local plain = raw_metatable(t) == nil
  local n = plain and rawlen(t) or length(t)
  if n > 1 then
    charge(n * (floor(log(n, 2)) + 1))
  end
  if plain then
    return c_result(pcall(C_sort, t, comp))
  end
  if n > 2147483646 then
    arg_error(1, "sort", "array too big", 2)
  end
  local copy = plain_copy(t, 1, n)
  c_result(pcall(C_sort, copy, comp))
  for k = 1, n do
    t[k] = copy[k]
  end
end

return M
