"""Pseudonymised research extracts (仮名加工情報) of residents who consented to research."""
