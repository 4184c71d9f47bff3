"""Valid and invalid sample texts for every grammar shipped in ``grammars/``.

``SAMPLES[name]`` (``name`` is the file stem, e.g. ``"sql_select"`` for
``grammars/sql_select.lark``) holds ``"valid"`` and ``"invalid"`` lists of str.
Valid samples are realistic documents; invalid ones are near misses.  Both are
chosen to give the same verdict under lark (basic and dynamic lexers) and under
structgen's greedy contextual lexer: no valid sample needs a lexeme shorter than
the longest one available, and no invalid sample becomes valid by reading a
keyword as an identifier (with Earley, ``NAME`` also matches keywords, so e.g.
``SELECT * FROM t WHERE`` is a complete query aliasing ``t`` as ``WHERE``; such
texts are deliberately absent from the invalid lists).  Reuse them to test the token-mask engine.
"""

from __future__ import annotations

SAMPLES: dict[str, dict[str, list[str]]] = {}

# ---------------------------------------------------------------------------
# JSON (RFC 8259)

SAMPLES["json"] = {
    "valid": [
        '{"name": "structgen", "version": "0.1.0", "tags": ["grammar", "json"], "stable": false}',
        "[]",
        "{}",
        "  42  ",
        "-0.0e-0",
        "null",
        '"caf\\u00e9 \\ud83d\\ude00 \\"quoted\\" \\\\ back\\/slash \\b\\f\\n\\r\\t"',
        '{\n  "user": {\n    "id": 1234567890123,\n    "name": "Zo\u00eb \u00c5str\u00f6m",\n'
        '    "emoji": "\U0001f680",\n    "scores": [1, -2, 3.5, 6.02e23, 1E-9, 0],\n'
        '    "address": null,\n    "nested": [[[[{"deep": [true]}]]]]\n  },\n'
        '  "empty": {"a": [], "b": {}, "": ""}\n}\n',
        '[\r\n\t1,\r\n\t{"k": "v"}\r\n]',
        '{"a":{"b":{"c":{"d":{"e":[1,2,{"f":"g"}]}}}}}',
        '["\u4e2d\u6587", "\u0440\u0443\u0441\u0441\u043a\u0438\u0439", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629"]',
        '{"price": 19.99, "currency": "EUR", "in_stock": true, "dims": {"w": 0.5, "h": 12}}',
    ],
    "invalid": [
        "",
        '{"a": 1,}',
        "[1, 2,]",
        "{'a': 1}",
        '{a: 1}',
        "01",
        "+1",
        ".5",
        "1.",
        "NaN",
        '"tab\there"',
        '"line\nbreak"',
        '"bad escape \\x41"',
        '"short \\u12"',
        '{"a" 1}',
        "[1 2]",
        '{"a": 1}}',
        "[true, False]",
        '// comment\n{"a": 1}',
        '"unterminated',
    ],
}

# ---------------------------------------------------------------------------
# SQL SELECT subset

SAMPLES["sql_select"] = {
    "valid": [
        "SELECT * FROM users",
        "select id, name as full_name, u.email from users u where u.active = true;",
        "SELECT u.id, u.name, COUNT(o.id) AS order_count, SUM(o.total) AS revenue\n"
        "FROM users AS u\n"
        "LEFT OUTER JOIN orders o ON o.user_id = u.id AND o.status <> 'cancelled'\n"
        "INNER JOIN countries c ON c.code = u.country_code\n"
        "WHERE u.created_at >= '2024-01-01' AND (c.region = 'EU' OR c.region IS NULL)\n"
        "GROUP BY u.id, u.name\n"
        "HAVING COUNT(o.id) > 3\n"
        "ORDER BY revenue DESC, u.name ASC\n"
        "LIMIT 20 OFFSET 40;",
        "SELECT DISTINCT department FROM employees WHERE salary BETWEEN 50000 AND 90000 "
        "AND name NOT LIKE 'A%' ORDER BY department",
        "SELECT name FROM products WHERE category_id IN (SELECT id FROM categories "
        "WHERE parent_id IS NOT NULL) AND price * 1.2 < 100",
        "SELECT p.*, CASE WHEN p.stock = 0 THEN 'out' WHEN p.stock < 10 THEN 'low' "
        "ELSE 'ok' END AS availability FROM products p",
        "SELECT \"Order\".\"Id\", `weird col` FROM \"Order\" JOIN items USING (order_id)",
        "SELECT a.x FROM a CROSS JOIN b WHERE NOT a.flag AND NOT EXISTS "
        "(SELECT 1 FROM c WHERE c.a_id = a.id)",
        "SELECT region, AVG(amount) FROM (SELECT region, amount FROM sales WHERE year = 2023) "
        "AS s GROUP BY region",
        "SELECT id FROM t1 UNION ALL SELECT id FROM t2 ORDER BY id",
        "SELECT CAST(price AS DECIMAL(10, 2)), -quantity, 'it''s' || name FROM items "
        "-- trailing comment\nWHERE status IN ('new', 'open') /* block\ncomment */ LIMIT 5",
        "SELECT COUNT(DISTINCT customer_id) FROM orders WHERE shipped_at IS NULL "
        "OR total >= 100.50 ORDER BY 1 DESC NULLS LAST",
    ],
    "invalid": [
        "",
        "SELECT",
        "SELECT * FROM t WHERE a = 1 GROUP",
        "SELECT * FROM",
        "SELECT a,, b FROM t",
        "SELECT * FROM t WHERE a =",
        "SELECT * FROM t ORDER name",
        "SELECT * FROM t LIMIT 10 OFFSET",
        "SELECT * FROM a JOIN b",
        "SELECT * FROM t WHERE name = 'unterminated",
        "SELECT (a + b FROM t",
        "SELECT * FROM t GROUP name",
        "UPDATE t SET a = 1",
        "SELECT * FROM t WHERE a IS 5",
        "SELECT * FROM t;;",
    ],
}

# ---------------------------------------------------------------------------
# Arithmetic expressions

SAMPLES["arithmetic"] = {
    "valid": [
        "1 + 2 * 3",
        "-x ^ 2",
        "2 ^ -1",
        "(a + b) * (c - d) / e % 7",
        "sqrt(x ** 2 + y ** 2)",
        "max(a, b, min(c, 3.5e-2)) - f()",
        "--x",
        "-(-(1))",
        ".5 + 5. + 6.02E23",
        "  alpha_1 * beta2\n  + gamma\n",
        "pow(2, 10) / log(1e3) + pi * r ^ 2",
        "a - b - c - d",
    ],
    "invalid": [
        "",
        "1 +",
        "(1 + 2",
        "1 + 2)",
        "f(,)",
        "f(x,)",
        "1 2",
        "* 3",
        "2 ^",
        "a b",
        "1.2.3",
        "3 // 2",
        "x = 1",
    ],
}

# ---------------------------------------------------------------------------
# minilang

SAMPLES["minilang"] = {
    "valid": [
        "",
        "let x = 1;",
        r'let s = "a\\"; let t = "q\"x";',  # escaped backslash, escaped quote
        "# Fibonacci, iteratively\n"
        "fn fib(n) {\n"
        "    if n < 2 { return n; }\n"
        "    let a = 0;\n"
        "    let b = 1;\n"
        "    let i = 1;\n"
        "    while i < n {\n"
        "        let t = a + b;\n"
        "        a = b;\n"
        "        b = t;\n"
        "        i += 1;\n"
        "    }\n"
        "    return b;\n"
        "}\n"
        "print(fib(10));\n",
        "fn classify(n) {\n"
        "    if n < 0 {\n"
        "        return \"negative\";\n"
        "    } else if n == 0 {\n"
        "        return \"zero\";\n"
        "    } else {\n"
        "        return \"positive\";\n"
        "    }\n"
        "}\n",
        "let xs = [1, 2, 3, [4, 5]];\n"
        "let total = 0;\n"
        "for x in xs {\n"
        "    if not (x == nil) and x != 3 { total += x; } else { continue; }\n"
        "}\n"
        "xs[0] = -xs[1] * 2 % 5;\n",
        "let add = fn(a, b) { return a + b; };\n"
        "let compose = fn(f, g) { return fn(x) { return f(g(x)); }; };\n"
        "print(compose(add, add)(1)(2));\n",
        "let i = 0;\nwhile true {\n  i = i + 1;\n  if i >= 10 or i == 7 { break; }\n}\n",
        "fn noop() { return; }\n{ let scoped = \"a \\\"quoted\\\" string\\n\"; }\n",
        "let grid = [[0, 0], [0, 0]];\ngrid[1][0] = 42;\ngrid[0][1] -= 1.5;\nprint(grid);\n",
        "fn fact(n) {  # recursive\n  if n <= 1 { return 1; }\n  return n * fact(n - 1);\n}\n",
    ],
    "invalid": [
        "let x = 1",
        "let 3 = 4;",
        "if x { y = 1;",
        "fn f(a b) { }",
        "return 1",
        "x = = 1;",
        "x + 1 = 2;",
        "let s = \"unterminated;",
        "while x < 3 { x += 1; ",
        "fn (a) { return a; }",
        "let x = [1, 2;",
        "print(1,);",
        "if x { } else",
    ],
}

# ---------------------------------------------------------------------------
# CSV (RFC 4180-ish)

SAMPLES["csv"] = {
    "valid": [
        "id,name,email",
        "id,name,email\n",
        "id,name,email\r\n1,Ada Lovelace,ada@example.com\r\n2,Alan Turing,alan@example.org\r\n",
        'sku,description,price\nA-1,"Widget, large",9.99\nB-2,"He said ""hi""",0.50\n',
        'id,notes\n1,"multi\nline\r\nnote"\n2,plain\n',
        "a,b,c\n1,,3\n,,\n4,5,\n",
        "city,country\nZ\u00fcrich,Schweiz\n\u6771\u4eac,\u65e5\u672c\nS\u00e3o Paulo,Brasil",
        "single\nvalue\nanother value\n",
        'name,quote\n"",""""\n  padded  , spaced out \n',
        "year,count\n2021,10\n2022,12\n2023,15",
    ],
    "invalid": [
        "",
        "\n",
        'a,b\n"unterminated,1\n',
        'a,b\nx"y,1\n',
        'a,b\n"quoted"tail,1\n',
        "a,b\n\n1,2\n",
        "a,b\r1,2\r",
        "a,b\n1,2\n\n",
    ],
}
