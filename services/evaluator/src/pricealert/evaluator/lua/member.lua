-- An index member: the fields of index.py's MEMBER_FIELDS, tab-separated, name last (a test checks parse against
-- them). A parked member (see evaluate_ticks.lua) has a mark ('~' or '!'), an order key and a tab in front.

-- The member as indexed, whether parked or not.
local function unparked(member)
  local first = string.byte(member)
  if first == 126 or first == 33 then return string.sub(member, string.find(member, '\t', 1, true) + 1) end
  return member
end

-- The member's fields by name.
local function parse(member)
  local alert_id, indexed_at, user_id, email, condition, target_price, expires_at, name =
    string.match(unparked(member), '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$')
  return {alert_id = alert_id, indexed_at = tonumber(indexed_at), user_id = user_id, email = email,
          condition = condition, target_price = target_price, expires_at = expires_at, name = name}
end

-- A v1-shaped member carries its fields (tab-separated); any other is an alert id whose definition is in defs.lua's
-- hash.
local function is_compact(unparked_member)
  return string.find(unparked_member, '\t', 1, true) ~= nil
end
