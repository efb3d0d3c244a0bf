"""Exploratory data analysis of a dataset version: statistics, figures and the HTML report.

Pure: functions take digits and numbers and return numbers, matplotlib figures or HTML text.
"""
