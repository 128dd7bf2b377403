"""The resource catalog (资源目录): what each table is, who owns it, and what it is built from."""
