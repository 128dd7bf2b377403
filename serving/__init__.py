"""The data-product API (数据服务): ADS tables over HTTP for departments' apps (issue #8)."""
