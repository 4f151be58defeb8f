# METADATA
# title: Text library
# description: |
#   Words for messages: a noun or verb that agrees with a count, and a list
#   of alternatives joined as a sentence joins them.
package podgate.lib.text

# plural(n, one, many): one when n is 1, else many: plural(n, "node", "nodes").
plural(1, one, _) := one

plural(n, _, many) := many if n != 1

# or_list(items): "a", "a or b", "a, b, or c".
or_list(items) := items[0] if count(items) == 1

or_list(items) := sprintf("%s or %s", items) if count(items) == 2

or_list(items) := sprintf("%s, or %s", [concat(", ", array.slice(items, 0, count(items) - 1)), items[count(items) - 1]]) if {
	count(items) > 2
}
