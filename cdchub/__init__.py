"""cdchub: log-based change-data-capture hub for Kingdee K/3 Cloud, ZOHO CRM, Weaver OA and Huilianyi."""
