"""What rallycall itself says and writes, in each person's language: language tags and voices
(`languages`), and the message catalogues translators edit (`catalogues`, `locale/*.po`)."""
